// One row of a quantized W (GGML blocks, or MLX affine words with their scales and biases) dequantized to f32
// exactly as quant::dequantize / quant::affine_dequantize do: shared by the CPU dequantize and quantized matmul.
#pragma once

#include <cstdint>

#include "kernels/qmatmul.h"
#include "mlxn/quant/affine.h"
#include "mlxn/quant/quant.h"

namespace mlxn::cpu {

// P: kern::QMatmulParams or kern::DequantParams (layout, w, scales, biases, tw, ts, bits, group, row_bytes).
template <typename P>
Status dequantize_row(const P& p, int64_t r, int64_t cols, float* out) {
  const auto* row = static_cast<const uint8_t*>(p.w) + r * p.row_bytes;
  if (p.layout == kern::QWeight::Ggml) return quant::dequantize(p.tw, row, static_cast<size_t>(p.row_bytes), out, cols);
  const int64_t off = r * (cols / p.group) * static_cast<int64_t>(dtype_size(p.ts));
  return quant::affine_dequantize({p.bits, p.group}, 1, cols, row, static_cast<size_t>(p.row_bytes), p.ts,
                                  static_cast<const uint8_t*>(p.scales) + off,
                                  static_cast<const uint8_t*>(p.biases) + off, out);
}

}  // namespace mlxn::cpu
