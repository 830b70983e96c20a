// Layout ops: permute / transpose, repeat (tile), concat / split / slice, row gather and scatter by an int32 index
// buffer, and the qkv split. They move elements without arithmetic, so every plain dtype works (bit copies by
// element size); concat, split and the row gather / scatter also take GGML block types where whole rows (or the
// outer dimensions) are moved. Outputs are contiguous unless said otherwise; inputs may be strided views.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

// out[i_0, ..., i_{r-1}] = x[j] with j[perm[d]] = i_d: out.shape[d] = x.shape[perm[d]] (numpy.transpose).
// Rank <= 4. Permutations that move the innermost dimension (e.g. (0, 2, 1): [A, B, C] -> [A, C, B]) go through a
// shared-memory tiled transpose; those that keep it (e.g. (1, 0, 2): [A, B, C] -> [B, A, C]) are row copies.
Status permute(Session& s, const Buffer& x, std::span<const int> perm, const Buffer& out);
inline Status permute(Session& s, const Buffer& x, std::initializer_list<int> perm, const Buffer& out) {
  return permute(s, x, std::span<const int>(perm.begin(), perm.size()), out);
}
// Swaps the last two dimensions (rank 2 to 4).
Status transpose(Session& s, const Buffer& x, const Buffer& out);

// out = numpy.tile(x, reps) with one rep per dimension of x: out.shape[d] = x.shape[d] * reps[d]. Rank <= 4.
// Grouped-query heads repeated tiled, dst[t, h, :] = src[t, h % Hkv, :], are reps {1, Hq / Hkv, 1} on [T, Hkv, D].
Status repeat(Session& s, const Buffer& x, std::span<const int64_t> reps, const Buffer& out);
inline Status repeat(Session& s, const Buffer& x, std::initializer_list<int64_t> reps, const Buffer& out) {
  return repeat(s, x, std::span<const int64_t>(reps.begin(), reps.size()), out);
}

// out = the inputs one after another along `axis` (all other dimensions equal). Contiguous inputs and output go
// through one kernel per 4 inputs; strided views through one strided copy each.
Status concat(Session& s, std::span<const Buffer> inputs, int axis, const Buffer& out);
// The inverse: outputs[j] = the j-th consecutive piece of x along `axis` (their sizes along it add up to x's).
Status split(Session& s, const Buffer& x, int axis, std::span<const Buffer> outputs);

// A view of x[..., start : start + count, ...] along `axis` (no copy; shares x's storage).
Result<Buffer> slice_view(const Buffer& x, int axis, int64_t start, int64_t count);
// A copy of that slice into out (count = out.shape[axis]).
Status slice(Session& s, const Buffer& x, int axis, int64_t start, const Buffer& out);

// out[i, ...] = table[idx[i], ...] for the n = idx.numel() int32 indices; table is [rows, ...] with contiguous rows,
// out [n, ...]. An index outside [0, rows) writes a row of zero bytes (never reads out of bounds).
Status gather_rows(Session& s, const Buffer& table, const Buffer& idx, const Buffer& out);
// out[idx[i], ...] = src[i, ...]; rows of out not named keep their contents. Indices outside [0, out rows) are
// skipped; indices must be distinct (with duplicates, which row lands is unspecified).
Status scatter_rows(Session& s, const Buffer& src, const Buffer& idx, const Buffer& out);

// A fused projection output qkv [tokens, (Hq + 2 Hkv) D] (rows may be strided) into three contiguous buffers
// q [tokens, Hq D], k and v [tokens, Hkv D] (any shapes with those element counts, e.g. [tokens, H, D]).
Status qkv_split(Session& s, const Buffer& qkv, const Buffer& q, const Buffer& k, const Buffer& v);

}  // namespace mlxn::ops
