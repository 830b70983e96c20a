// Normalisation over the last dimension.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

struct RmsNormParams {
  float eps = 1e-6f;
  // Added to every weight before use: 0 for Llama / Qwen, 1 for Gemma's (1 + w) convention.
  float weight_offset = 0.0f;
};

// y = x * rsqrt(mean(x^2) + eps) * (w + weight_offset), over the last dimension of x, computed in f32 and rounded
// once to y's dtype. x and y are contiguous f32 / f16 / bf16 of the same shape (any mix of dtypes; y may be x);
// w is optional (pass an invalid Buffer to skip it: y = x * rsqrt(...)), with one element per column, in x's dtype or
// f32. Rows of any length.
Status rms_norm(Session& s, const Buffer& x, const Buffer& w, const Buffer& y, const RmsNormParams& p = {});

// Common rules of the ops below: x, y and the residual buffers are contiguous f32 / f16 / bf16; r and h have x's
// dtype and shape, y has x's shape and any of the three dtypes; w and b have one element per normalised column, in
// x's dtype or f32 (both the same); arithmetic is f32 and each output is rounded once. An output may be exactly an
// input (in place) but not overlap it partially; weights may not overlap outputs. On CUDA the kernels read w before
// they wait for the previous kernel in the stream (programmatic dependent launch; weights are constants): w must not
// be the output of the op recorded immediately before (MLXN_PDL=0 turns the overlap off). This holds for rms_norm too.

// Fused residual add + RMSNorm (the pre-norm of a transformer block): h = x + r (rounded to x's dtype: the new
// residual stream) and y = rms_norm(h) * (w + weight_offset), both written by one kernel. The norm sees h as
// stored, so the result equals add() followed by rms_norm(). h may be x or r; y may not overlap h.
// Mixed precision (a transformer's f32 residual stream plus the f16 / bf16 output of a block): when x and h are f32,
// r may also be f16 or bf16; it is converted to f32 exactly and h = round_f32(x + float(r)), as add() does for those
// dtypes. h then may be x but not r (their byte ranges differ); w is f32 (x's dtype).
Status add_rms_norm(Session& s, const Buffer& x, const Buffer& r, const Buffer& w, const Buffer& h, const Buffer& y,
                    const RmsNormParams& p = {});

// RMSNorm then residual add (Gemma 2/3 post-attention and post-FFN norms): y = r + rms_norm(x) * (w + weight_offset),
// rounded once. y may be r (update the residual stream in place) or x.
Status rms_norm_add(Session& s, const Buffer& x, const Buffer& w, const Buffer& r, const Buffer& y,
                    const RmsNormParams& p = {});

// Per-group RMSNorm (q/k norm of Qwen3, Gemma 3, OLMo 2): x's last dimension holds groups of `group_size` elements
// (attention heads of head_dim) and each group is normalised on its own, all with the shared weight w of
// `group_size` elements: y[.., g, d] = x[.., g, d] * rsqrt(mean_d(x[.., g, :]^2) + eps) * (w[d] + weight_offset).
// The last dimension must be a multiple of group_size.
Status group_rms_norm(Session& s, const Buffer& x, const Buffer& w, const Buffer& y, int64_t group_size,
                      const RmsNormParams& p = {});

struct LayerNormParams {
  float eps = 1e-5f;  // torch.nn.LayerNorm's default
};

// LayerNorm over the last dimension (Ba et al. 2016; torch.nn.LayerNorm, ggml_norm + mul + add):
// y = (x - mean) * rsqrt(var + eps) * w + b with the biased variance mean((x - mean)^2), computed from the
// centred values (not E[x^2] - mean^2). w and b are optional (pass an invalid Buffer to skip either).
Status layer_norm(Session& s, const Buffer& x, const Buffer& w, const Buffer& b, const Buffer& y,
                  const LayerNormParams& p = {});

struct L2NormParams {
  float eps = 1e-12f;  // torch.nn.functional.normalize's default
};

// L2 normalisation over the last dimension, as torch.nn.functional.normalize(x, dim=-1) and ggml_l2_norm:
// y = x / max(||x||_2, eps). (Not x / sqrt(sum x^2 + eps), which differs for small norms.)
Status l2_norm(Session& s, const Buffer& x, const Buffer& y, const L2NormParams& p = {});

}  // namespace mlxn::ops
