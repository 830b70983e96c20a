// MLX affine quantization: w = scale * q + bias per group of `group_size` consecutive elements of a row, q an
// unsigned `bits`-wide integer (bits 2, 3, 4, 5, 6 or 8). A row of K elements is a little-endian bit stream of
// K * bits bits: element i occupies bits [i * bits, (i + 1) * bits). For 2, 4 and 8 bits that is 32 / bits values
// per uint32 word, lowest first; for 3 and 5 bits, 8 values per 3 or 5 bytes; for 6 bits, 4 values per 3 bytes
// (MLX's packing). Checkpoints store it as a uint32 tensor [N, K * bits / 32]. Scales and biases are [N, K /
// group_size] in the checkpoint's float type (f16, bf16 or f32; read it from the file, never assume).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/core/status.h"

namespace mlxn::quant {

struct AffineSpec {
  int bits = 4;
  int group_size = 64;
};

// bits in {2, 3, 4, 5, 6, 8}, group_size a positive multiple of 32 that divides `cols`, and a row a whole number of
// uint32 words.
Status affine_check(const AffineSpec& spec, int64_t rows, int64_t cols);
// Bytes of the packed weight of a [rows, cols] matrix.
size_t affine_packed_bytes(const AffineSpec& spec, int64_t rows, int64_t cols);

// Dequantizes to f32: out[r * cols + c] = float(scale) * q + float(bias), in f32.
Status affine_dequantize(const AffineSpec& spec, int64_t rows, int64_t cols, const void* packed, size_t packed_bytes,
                         DType scale_dtype, const void* scales, const void* biases, float* out);

struct AffineQuantized {
  std::vector<uint8_t> packed;  // rows * cols * bits / 8 bytes
  std::vector<uint8_t> scales;  // rows * cols / group_size values of scale_dtype
  std::vector<uint8_t> biases;
};

// MLX's reference quantizer (mlx/backend/cpu/quantized.cpp): per group, the edge of larger magnitude (min or max) is
// represented exactly with q = 0 when possible, scale = (max - min) / (2^bits - 1) (at least 1e-7), q rounded to
// nearest even and clamped. Scales and biases are stored rounded to `scale_dtype` (f16, bf16 or f32).
Result<AffineQuantized> affine_quantize(const AffineSpec& spec, int64_t rows, int64_t cols, const float* w,
                                        DType scale_dtype);

}  // namespace mlxn::quant
