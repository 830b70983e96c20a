// Matrix products against weights: y = x W^T.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

// y[m, n] = sum_k x[m, k] * W[n, k] (W stored [N, K] row-major, as checkpoints store linear layers).
// x: [..., K] f32 / f16 / bf16, rows contiguous (a row stride larger than K is allowed: a 2-D strided view);
// y: [..., N] in x's dtype, same leading dimensions.
// W: [N, K] f32 / f16 / bf16, or a GGML block format (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_NL, IQ4_XS, MXFP4) holding its raw blocks, K a whole number of blocks, the data 4-byte aligned.
// Accumulation is in f32 (float64 on the CPU reference, which dequantizes W exactly as quant::dequantize does).
// Dense W: decode-sized M (<= 16) runs a bandwidth-bound kernel that reads W once per 8 rows of x (once for M = 2..16
// when W and x are both bf16 or both f16: mma.sync on the tensor cores); larger M runs a tensor-core GEMM. Quantized W on CUDA: weights are decoded in registers and multiplied on the tensor cores with
// x rounded to f16 (f32 / bf16 values beyond +-65504 saturate); W is read once per 16 rows of x. From M = 64 on
// (CUDA), W is instead dequantized in chunks of rows into the session's scratch (Session::scratch, at most 64 MiB) in
// x's dtype and multiplied by cuBLASLt: each weight rounded once to x's dtype (bf16: 2^-8 relative), x exact.
Status matmul(Session& s, const Buffer& x, const Buffer& w, const Buffer& y);

// An MLX affine-quantized linear weight (quant/affine.h): `packed` is the u32 tensor [N, K * bits / 32], `scales`
// and `biases` are [N, K / group_size] in f16, bf16 or f32. W[n, k] = scale * q + bias.
struct AffineWeight {
  Buffer packed, scales, biases;
  int bits = 4;          // 2, 3, 4, 5, 6 or 8
  int group_size = 64;   // 32, 64 or 128 (any multiple of 32 dividing K)
};

// y = x W^T with an MLX affine weight; x and y as for matmul.
Status matmul_affine(Session& s, const Buffer& x, const AffineWeight& w, const Buffer& y);

}  // namespace mlxn::ops
