// Matrix products against weights: y = x W^T.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"
#include "mlxn/ops/activation.h"

namespace mlxn::ops {

// y[m, n] = sum_k x[m, k] * W[n, k] (W stored [N, K] row-major, as checkpoints store linear layers).
// x: [..., K] f32 / f16 / bf16, rows contiguous (a row stride larger than K is allowed: a 2-D strided view);
// y: [..., N] in x's dtype, same leading dimensions.
// W: [N, K] f32 / f16 / bf16, or a GGML block format (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_NL, IQ4_XS, MXFP4) holding its raw blocks, K a whole number of blocks, the data 4-byte aligned.
// Accumulation is in f32 (float64 on the CPU reference, which dequantizes W exactly as quant::dequantize does).
// Dense W: decode-sized M (<= 16) runs a bandwidth-bound kernel that reads W once per 8 rows of x (once for M = 2..16
// when W and x are both bf16 or both f16: mma.sync on the tensor cores); larger M runs a tensor-core GEMM.
// Quantized W on CUDA, M <= 16 (M <= 4: src/cuda/qgemv.cuh, dp4a; 5 <= M <= 16: src/cuda/qgemm_i8.cuh, int8 mma.sync,
// from M = 9 for the K-quants, IQ4_XS and MXFP4, which run the f16 kernel below at M = 5..8; x quantized first into the session's scratch, M x K bytes and a float4 per block, padded to 8 or 16 rows):
// each 32-element block b of a row of x is quantized to int8 as
// ggml's q8_1 does (d_b = max|x| / 127, codes round(x / d_b)), so |x - xq| <= d_b / 2 per element, and the
// products are exact integer dot products scaled in f32: |y - ref| <= sum_b (d_b / 2) sum_{k in b} |W(n, k)| plus
// f32 rounding of the per-block terms and the output rounding. For Gaussian x that bound is about 1 % of
// sum_k |x| |W(n, k)|, and the typical error about 0.5 % of the outputs' RMS (ggml's mmvq has the same error).
// A row's result does not depend on M beyond the f32 order of adding the scaled block sums.
// 16 < M < 64 (and the M above not taken by the int8 kernel, with MLXN_TUNE_QGEMM_I8=0, or K not a multiple of 32): the weights are formed in f16 and
// multiplied on the tensor cores with x rounded to f16 (f32 / bf16 values beyond +-65504 saturate); W is read once
// per 16 rows of x. From M = 64 on (CUDA), W is dequantized in chunks of rows into the session's scratch
// (Session::scratch, at most 64 MiB) in x's dtype and multiplied by cuBLASLt: each weight rounded once to x's dtype
// (bf16: 2^-8 relative), x exact.
// The int8 kernel starts reading quantized W before it waits for the previous kernel in the stream (programmatic
// dependent launch; weights are constants): W must not be the output of the op recorded immediately before this one
// (upload it, or let any other op run in between; MLXN_PDL=0 turns the overlap off).
Status matmul(Session& s, const Buffer& x, const Buffer& w, const Buffer& y);

// The glue of a transformer decode step fused into a quantized matmul (no extra kernel, no intermediate):
//   y = residual + (rms_norm(x) * (norm + norm_offset)) W^T,
// each part optional. norm: [K] f32 / f16 / bf16; x's rows are scaled by 1 / sqrt(mean(x^2) + eps) first, as
// ops::rms_norm does (in f32, never rounded to x's dtype in between). residual: y's shape, dtype and row stride, and
// may be y itself (y += ...). With either, y may have any float dtype (an f32 residual stream with bf16
// activations). Quantized W (GGML formats, and matmul_affine) only; supported where matmul_fuses says so (the CPU
// always; CUDA at M <= 4 with M * ceil(K / 1024) <= 32, in the int8 decode kernel: x is normalised and scaled by
// the norm weight in f32 and then quantized to int8 per 32-element block as above, and the row's 1 / rms scales the
// f32 result; the error bound above holds for the normalised x). Elsewhere the call fails with Unsupported.
// glu: W is [2N, K], the gate projection's N rows then the up projection's (as a fused gate|up weight is stored),
// and y = act(xn Wg^T) * (xn Wu^T) is [..., N] (the SwiGLU / GeGLU of ops::glu in the same kernel; CUDA: M = 1, GGML
// formats).
struct MatmulFusion {
  Buffer norm;
  float eps = 1e-6f;
  float norm_offset = 0.0f;
  Buffer residual;
  bool glu = false;
  Activation act = Activation::Silu;
  bool empty() const { return !norm.valid() && !residual.valid() && !glu; }
};
bool matmul_fuses(const Device& d, int64_t m, int64_t k);
Status matmul(Session& s, const Buffer& x, const Buffer& w, const Buffer& y, const MatmulFusion& f);

// An MLX affine-quantized linear weight (quant/affine.h): `packed` is the u32 tensor [N, K * bits / 32], `scales`
// and `biases` are [N, K / group_size] in f16, bf16 or f32. W[n, k] = scale * q + bias.
struct AffineWeight {
  Buffer packed, scales, biases;
  int bits = 4;          // 2, 3, 4, 5, 6 or 8
  int group_size = 64;   // 32, 64 or 128 (any multiple of 32 dividing K)
};

// y = x W^T with an MLX affine weight; x and y as for matmul.
Status matmul_affine(Session& s, const Buffer& x, const AffineWeight& w, const Buffer& y);
Status matmul_affine(Session& s, const Buffer& x, const AffineWeight& w, const Buffer& y, const MatmulFusion& f);

// Expert-routed matmul (mixture of experts): for token t < T and slot j < k, with e = ids[t, j],
//   y[t, j, n] = sum_k xr[k] * W[e, n, k],  xr = x[t, :] for x [T, K] (every slot of a token reads its row, as the
//   gate / up projections do) or x[t, j, :] for x [T, k, K] (one input per slot, as the down projection has).
// w: [E, N, K], a GGML weight format (as matmul: K a whole number of blocks, data 4-byte aligned) or f32 / f16 /
// bf16. ids: [T, k] i32 on the device, read by the kernel (no host round trip; the launch does not depend on them, so
// a captured graph replays with new ids). An id outside [0, E) gives a zero row of y. y: [T, k, N] in x's dtype,
// contiguous. Accuracy: quantized w as matmul at M = 1 on CUDA (x quantized to int8 per 32-element block); float
// w accumulates in f32; the CPU reference dequantizes exactly and accumulates in float64.
Status matmul_experts(Session& s, const Buffer& x, const Buffer& w, const Buffer& ids, const Buffer& y);

// Gated expert-routed matmul (the gate / up half of a MoE feed-forward block in one op):
//   y[t, j, n] = act(sum_k xr[k] W_gate[e, n, k]) * sum_k xr[k] W_up[e, n, k],  e = ids[t, j],
// with x, ids and y as for matmul_experts, w_gate and w_up of one type and shape [E, N, K]. On CUDA one kernel
// computes both products of a row (each warp takes gate row n and up row n, so x is quantized once and the
// activation is applied before the single store): the decode step of a MoE layer saves the second matmul launch,
// the [T, k, 2N] intermediate and the glu kernel. act(g) uses the same functions as ops::glu; an id outside [0, E)
// gives a zero row.
Status matmul_experts_glu(Session& s, Activation act, const Buffer& x, const Buffer& w_gate, const Buffer& w_up,
                          const Buffer& ids, const Buffer& y);

}  // namespace mlxn::ops
