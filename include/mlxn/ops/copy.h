// Strided and offset copies between views: dst[i...] = src[i...] for every index of their (equal) shapes.
// Views may have any non-negative strides and byte offsets (see Buffer::view_strided). Same-dtype copies work for
// every plain dtype; f32 / f16 / bf16 convert among themselves. Contiguous same-dtype copies of block types too.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

Status copy(Session& s, const Buffer& src, const Buffer& dst);

}  // namespace mlxn::ops
