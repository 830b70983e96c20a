// Softmax over the last dimension, numerically stable (the row maximum is subtracted) with f32 accumulation.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

struct SoftmaxParams {
  float scale = 1.0f;  // applied to x before the mask is added (ggml_soft_max_ext's scale)
};

// y = softmax(x * scale + mask) over the last dimension, for rows of any length.
// x and y: contiguous f32 / f16 / bf16 of one shape (dtypes may differ; y may be x). mask is optional (pass an
// invalid Buffer): a contiguous f32 / f16 / bf16 [mask_rows, cols] tensor (any leading shape whose product is
// mask_rows) added to row r of x as mask row r % mask_rows, so [1, cols] broadcasts over every row and
// [q, cols] over the heads of an [heads, q, cols] score tensor (as ggml_soft_max_ext); -inf masks a column.
// A row whose every value is -inf gives zeros (not NaN).
Status softmax(Session& s, const Buffer& x, const Buffer& mask, const Buffer& y, const SoftmaxParams& p = {});
inline Status softmax(Session& s, const Buffer& x, const Buffer& y) { return softmax(s, x, Buffer(), y, {}); }

// y = log_softmax(x * scale + mask) = t - max(t) - log(sum(exp(t - max(t)))), same rules; a row of -inf gives -inf.
Status log_softmax(Session& s, const Buffer& x, const Buffer& mask, const Buffer& y, const SoftmaxParams& p = {});

}  // namespace mlxn::ops
