// Reductions over the last dimension of a contiguous f32 / f16 / bf16 tensor x of shape [..., cols] (rows = the
// product of the leading dimensions). Index outputs are int32.
//
// Ordering conventions (those of torch): NaN ranks above every number, -0 and +0 are equal, ties go to the lower
// index. Sums accumulate in f32 on CUDA (float64 on the CPU reference) and are rounded once to out's dtype.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

// Workspace that lets argmax split rows of few-row inputs (decode logits: 1 x 151936) over many CUDA blocks.
size_t argmax_workspace_bytes(int64_t rows, int64_t cols);
// idx[r] = the lowest index of the maximum of row r; idx has `rows` elements (any shape), int32. val (optional, f32,
// `rows` elements) receives the maximum. workspace is optional: without one (or with one smaller than
// argmax_workspace_bytes) every row is reduced by a single block.
Status argmax(Session& s, const Buffer& x, const Buffer& idx, const Buffer& val = {}, const Buffer& workspace = {});

// Workspace top_k needs for rows longer than 4096 (0 otherwise): the per-chunk candidates of the split-row path.
size_t topk_workspace_bytes(int64_t rows, int64_t cols, int k);
// The k (1 <= k <= min(cols, 1024)) largest elements of each row, sorted descending, ties by lower index:
// values [rows, k] in x's dtype (optional: pass an empty Buffer) and indices [rows, k] int32. On CUDA, rows of up to
// 4096 are sorted by one block; longer rows keep each 4096-chunk's top k (a block radix sort) in the workspace and
// a second kernel selects the final k from those candidates.
Status topk(Session& s, const Buffer& x, int k, const Buffer& values, const Buffer& indices,
            const Buffer& workspace = {});

// indices[r, :] = row r's positions in ascending (or descending) order of value, ties by lower index (a stable
// sort). CUDA sorts rows of up to 4096 elements (router logits, candidate lists); longer rows are Unsupported there.
Status argsort(Session& s, const Buffer& x, const Buffer& indices, bool descending = false);

// out[r] = sum of row r; out has `rows` elements, any float dtype.
Status row_sum(Session& s, const Buffer& x, const Buffer& out);
// out[r, c] = x[r, 0] + ... + x[r, c] (inclusive scan along the last dimension); out has x's shape, any float dtype.
Status cumsum(Session& s, const Buffer& x, const Buffer& out);

}  // namespace mlxn::ops
