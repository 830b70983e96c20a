// Token embedding lookup.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

struct EmbeddingParams {
  float scale = 1.0f;  // Gemma multiplies by sqrt(hidden)
};

// out[t, :] = table[ids[t], :] * scale, in f32, rounded once to out's dtype. table [vocab, dim] is f32 / f16 / bf16
// or a GGML block type (rows of whole blocks; the CPU backend dequantizes the selected rows, the CUDA backend
// returns Unsupported for block types for now); ids int32 [n] on the device; out contiguous [n, dim] in f32 / f16 /
// bf16. An id outside [0, vocab) yields a row of zeros: nothing is read out of bounds, and the bad token is
// visible rather than aliased to a real one.
Status embedding(Session& s, const Buffer& table, const Buffer& ids, const Buffer& out, const EmbeddingParams& p = {});

}  // namespace mlxn::ops
