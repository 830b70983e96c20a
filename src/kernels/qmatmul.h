// Plain parameter struct of the quantized matmul kernels (GGML block formats and MLX affine), and the backend entry
// points.
#pragma once

#include <cstdint>

#include "kernels/activation.h"
#include "kernels/exec.h"

namespace mlxn::kern {

// Which weight layout a quantized matmul reads.
enum class QWeight : uint8_t {
  Ggml,    // W is a [N, K] tensor of GGML blocks of type tw (rows of K / block_elems blocks)
  Affine,  // MLX affine: packed u32 rows of K * bits / 32 words, scales and biases [N, K / group] of type ts
};

// y[m * ldy + n] = sum_k x[m * ldx + k] * W(n, k) for m < M, n < N; with the fused forms (norm, r: the decode
// step's glue, ops::MatmulFusion), y[m * ldy + n] = r[m * ldy + n] + g_m sum_k x[m * ldx + k] (norm[k] + norm_offset)
// W(n, k), g_m = 1 / sqrt(mean_k x[m * ldx + k]^2 + eps).
struct QMatmulParams {
  const void* x = nullptr;
  const void* w = nullptr;       // GGML blocks, or the packed affine words
  const void* scales = nullptr;  // affine only
  const void* biases = nullptr;  // affine only
  void* y = nullptr;
  QWeight layout = QWeight::Ggml;
  DType tx = DType::F32;
  DType ty = DType::F32;   // y's dtype: x's, except in the fused forms
  DType tw = DType::Q4_0;  // GGML block type (Ggml layout)
  DType ts = DType::F16;   // affine scales / biases dtype
  int bits = 4;            // affine
  int group = 64;          // affine
  int64_t M = 0, N = 0, K = 0;
  int64_t ldx = 0, ldy = 0;  // row strides in elements
  int64_t row_bytes = 0;     // bytes of one row of W
  // CUDA, 5 <= M <= 16: device scratch for x quantized to int8 (qgemm_i8_workspace_bytes; null: not given, the
  // tensor-core kernel runs instead). Written by the matmul, never read by the caller.
  void* workspace = nullptr;
  int64_t workspace_bytes = 0;
  // Fused forms (CPU; CUDA where qmatmul_fuses): an RMSNorm of x's rows with weight `norm` [K] (type tn) before the
  // product, and a residual r (y's dtype and row stride; may be y itself) added to it.
  const void* norm = nullptr;
  DType tn = DType::F32;
  float eps = 1e-6f, norm_offset = 0.0f;
  const void* r = nullptr;
  // Gated: W holds 2N rows (gate rows, then up rows) and y[m, n] = act(x . W(n)) * (x . W(N + n)), the norm's scale
  // applied to both products (CPU; CUDA at M = 1 over GGML blocks).
  bool glu = false;
  ActOp act = ActOp::Silu;
};

// Whether a backend runs the fused forms at this M and K: the CPU always; CUDA in its int8 decode kernel (M <= 4),
// whose quantized x must fit shared memory beside the weight ring (at most 32 steps of 1024 columns over the rows).
inline constexpr bool qmatmul_fuses(bool cuda, int64_t M, int64_t K) {
  return !cuda || (M <= 4 && M * ((K + 1023) / 1024) <= 32);
}

// Rows of x the int8 tensor-core kernel (src/cuda/qgemm_i8.cuh) takes, and the workspace it needs: x padded to 8 or
// 16 rows of K int8 codes, then one float4 {d, d sum, d sum(0..15), d sum(16..31)} per row and 32-element block.
inline constexpr int64_t kQGemmI8MinM = 5, kQGemmI8MaxM = 16;
// The smallest M that takes it, per weight format. Formats whose lanes decode straight into mma fragments (Q4_0, Q4_1,
// Q8_0, IQ4_NL), Q5_0 / Q5_1 and MLX affine win from M = 5; the formats decoded through a shared tile (K-quants,
// IQ4_XS, MXFP4) lose to the dequantizing tensor-core kernel up to M = 8 (H200, 14336x4096 at M = 8: q4_K 47.7 vs
// 37.2 us, q6_K 65.7 vs 58.0, mxfp4 50.3 vs 40.7; bench/RESULTS.md) and take it from M = 9 (at M = 16
// the int8 kernel measured q4_K 62.5 us, q6_K 78.3; the f16 kernel's M = 9..16 times are not measured yet).
inline constexpr int64_t qgemm_i8_min_m(QWeight layout, DType tw) {
  if (layout != QWeight::Ggml) return kQGemmI8MinM;
  switch (tw) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::IQ4_NL:
      return kQGemmI8MinM;
    default:
      return 9;
  }
}
inline constexpr bool qgemm_i8_takes_m(const QMatmulParams& p) {
  return p.M >= qgemm_i8_min_m(p.layout, p.tw) && p.M <= kQGemmI8MaxM && p.K % 32 == 0 && p.N > 0;
}
inline constexpr int64_t qgemm_i8_workspace_bytes(int64_t M, int64_t K) {
  const int64_t rows = M <= 8 ? 8 : 16;
  return rows * (K / 32) * (32 + 16);
}

// Expert-routed matmul: for slot z = t * top_k + j (t < T, j < top_k), e = ids[z]:
//   y[z * N + n] = sum_k x[(x_per_slot ? z : t) * ldx + k] * W_e(n, k)   (0 when e is outside [0, E))
// W is [E, N, K]: GGML blocks of type tw, or a float tensor (tw = F32 / F16 / BF16); y is [T, top_k, N] contiguous.
struct ExpertsParams {
  const void* x = nullptr;
  const void* w = nullptr;
  const int32_t* ids = nullptr;  // [T, top_k], on the device
  void* y = nullptr;
  DType tx = DType::F32;  // y has x's dtype
  DType tw = DType::Q4_0;
  int64_t T = 0, top_k = 0, E = 0, N = 0, K = 0;
  int64_t ldx = 0;          // elements between consecutive x rows
  bool x_per_slot = false;  // x is [T, top_k, K] rather than [T, K]
  int64_t row_bytes = 0;    // bytes of one row of one expert
  // Gated (matmul_experts_glu): w is the gate projection, w_up the up projection (same type and shape), and
  // y = act(x . w_gate) * (x . w_up).
  const void* w_up = nullptr;
  ActOp act = ActOp::Silu;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status qmatmul(const kern::QMatmulParams& p, const ExecContext& ctx);
Status matmul_experts(const kern::ExpertsParams& p, const ExecContext& ctx);
}
namespace mlxn::cuda {
Status qmatmul(const kern::QMatmulParams& p, const ExecContext& ctx);
Status matmul_experts(const kern::ExpertsParams& p, const ExecContext& ctx);
}
