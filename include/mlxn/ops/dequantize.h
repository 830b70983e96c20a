// Dequantization of weight rows on the device: GGML block formats and MLX affine to a float type.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"
#include "mlxn/ops/matmul.h"

namespace mlxn::ops {

// out[r, c] = W[r, c] for a weight W [N, K] of GGML blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K,
// Q6_K, IQ4_NL, IQ4_XS, MXFP4; contiguous, K a whole number of blocks, the data 2-byte aligned). Each element is
// computed exactly as quant::dequantize computes it (ggml's dequantize_row_*, the same f32 operations in the same
// order, no fused multiply-add), so f32 output is bit-identical to it and f16 / bf16 output is that value rounded
// once to nearest even. out: [N, K] f32 / f16 / bf16, contiguous or a 2-D view with contiguous rows; it must not
// overlap W. A row slice of W (w.slice(0, r0, n)) dequantizes those rows.
Status dequantize(Session& s, const Buffer& w, const Buffer& out);

// The same for an MLX affine weight (quant/affine.h): out[r, c] = scale * q + bias in f32, as
// quant::affine_dequantize computes it, rounded once to out's dtype. out: [N, K] as above.
Status dequantize_affine(Session& s, const AffineWeight& w, const Buffer& out);

}  // namespace mlxn::ops
