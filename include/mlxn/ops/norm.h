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

}  // namespace mlxn::ops
