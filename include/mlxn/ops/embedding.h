// Token embedding lookup.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"
#include "mlxn/ops/matmul.h"

namespace mlxn::ops {

struct EmbeddingParams {
  float scale = 1.0f;  // Gemma multiplies by sqrt(hidden)
};

// out[t, :] = table[ids[t], :] * scale, in f32, rounded once to out's dtype. table [vocab, dim] is f32 / f16 / bf16
// or a GGML block type (rows of whole blocks, decoded as quant::dequantize does: the same f32 value on every
// backend); ids int32 [n] on the device; out contiguous [n, dim] in f32 / f16 / bf16. An id outside [0, vocab)
// yields a row of zeros: nothing is read out of bounds, and the bad token is visible rather than aliased to a real
// one.
Status embedding(Session& s, const Buffer& table, const Buffer& ids, const Buffer& out, const EmbeddingParams& p = {});

// The same lookup in an MLX affine-quantized table [vocab, dim] (AffineWeight as for matmul_affine): each selected
// row is scale * q + bias in f32 (quant::affine_dequantize), multiplied by p.scale, rounded once to out's dtype.
Status embedding_affine(Session& s, const AffineWeight& table, const Buffer& ids, const Buffer& out,
                        const EmbeddingParams& p = {});

}  // namespace mlxn::ops
