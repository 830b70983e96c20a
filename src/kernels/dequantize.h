// Plain parameter structs of the row dequantizer (include/mlxn/ops/dequantize.h), which also serves the quantized
// embedding lookup and the prefill-sized quantized matmul, and the backend entry points.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/exec.h"
#include "kernels/qmatmul.h"

namespace mlxn::kern {

// out[t * ldo + c] = W(src(t), c) * scale for t < n, c < cols, rounded once to `to`; src(t) = ids[t] with ids (rows
// outside [0, vocab) give zeros), t without. W(r, c) is what quant::dequantize / quant::affine_dequantize give, in
// the same f32 operations.
struct DequantParams {
  QWeight layout = QWeight::Ggml;
  const void* w = nullptr;       // GGML blocks, or the packed affine words; rows row_bytes apart
  const void* scales = nullptr;  // affine only: [rows, cols / group] of ts
  const void* biases = nullptr;  // affine only
  void* out = nullptr;
  DType tw = DType::Q4_0;        // GGML block type (Ggml layout)
  DType ts = DType::F16;         // affine scales / biases
  DType to = DType::F32;         // f32, f16 or bf16
  int bits = 4;                  // affine
  int group = 64;                // affine
  int64_t n = 0;                 // output rows
  int64_t cols = 0;              // elements per row (a whole number of blocks / groups)
  int64_t row_bytes = 0;         // bytes of one row of W
  int64_t ldo = 0;               // output row stride in elements
  const int32_t* ids = nullptr;  // gather rows (embedding); nullptr: output row t is W row t
  int64_t vocab = 0;             // rows of W (checked against ids)
  float scale = 1.0f;
};

// y = x W^T for prefill-sized M on CUDA: W dequantized chunk_rows rows at a time into `scratch` (x's dtype) and
// multiplied by cuBLASLt. The CPU backend runs the plain quantized matmul (its reference) instead.
struct QPrefillParams {
  QMatmulParams q;
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
  int64_t chunk_rows = 0;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status dequantize(const kern::DequantParams& p, const ExecContext& ctx);
Status qmatmul_prefill(const kern::QPrefillParams& p, const ExecContext& ctx);
}  // namespace mlxn::cpu
namespace mlxn::cuda {
Status dequantize(const kern::DequantParams& p, const ExecContext& ctx);
Status qmatmul_prefill(const kern::QPrefillParams& p, const ExecContext& ctx);
}  // namespace mlxn::cuda
