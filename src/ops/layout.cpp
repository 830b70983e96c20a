#include "mlxn/ops/layout.h"

#include <algorithm>
#include <vector>

#include "kernels/layout.h"
#include "mlxn/ops/copy.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

using detail::check_buffer;
using detail::check_contiguous;

Result<int> normalize_axis(std::string_view op, int axis, int rank) {
  if (axis < -rank || axis >= rank) return invalid_argument(op, "axis ", axis, " out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

Status check_disjoint(std::string_view op, std::string_view a_name, const Buffer& a, std::string_view b_name,
                      const Buffer& b) {
  if (a.range().overlaps(b.range())) return invalid_argument(op, a_name, " and ", b_name, " overlap");
  return Status::ok();
}

Status check_same_dtype(std::string_view op, std::string_view arg, const Buffer& b, DType t) {
  if (b.dtype() != t) return invalid_argument(op, arg, " has dtype ", b.dtype(), ", expected ", t);
  return Status::ok();
}

Status check_plain(std::string_view op, std::string_view arg, const Buffer& b) {
  if (is_quantized(b.dtype()))
    return unsupported(op, arg, " has block type ", b.dtype(), "; this op moves single elements");
  return Status::ok();
}

int64_t prod(const Shape& s, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= s[i];
  return n;
}

// Bytes of `elems` elements of t (whole blocks for block types).
Result<int64_t> bytes_of(std::string_view op, DType t, int64_t elems) {
  auto r = dtype_storage_bytes(t, elems);
  if (!r.is_ok()) return invalid_argument(op, r.status().message());
  return static_cast<int64_t>(r.value());
}

// Records the parts kernel over groups of up to kMaxParts contiguous parts of one contiguous big buffer.
// part_elems[j]: elements of part j per row; rows of `big` are prod(shape[:axis]).
Status record_parts(Session& s, std::string_view op, const Buffer& big, int axis, std::span<const Buffer> parts,
                    bool split) {
  const DType t = big.dtype();
  const int64_t rows = prod(big.shape(), 0, axis);
  MLXN_ASSIGN_OR_RETURN(const int64_t big_row, bytes_of(op, t, prod(big.shape(), axis, big.rank())));
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({t})));
  int64_t col = 0;
  for (size_t j0 = 0; j0 < parts.size(); j0 += kern::kMaxParts) {
    kern::PartsParams kp;
    kp.big = big.data();
    kp.big_stride = big_row;
    kp.rows = rows;
    kp.split = split;
    kp.t = t;
    std::vector<MemRange> part_ranges;
    for (size_t j = j0; j < std::min(parts.size(), j0 + kern::kMaxParts); ++j) {
      const Buffer& b = parts[j];
      MLXN_ASSIGN_OR_RETURN(const int64_t w, bytes_of(op, t, prod(b.shape(), axis, b.rank())));
      kp.part[kp.n_parts] = b.data();
      kp.part_stride[kp.n_parts] = w;
      kp.part_bytes[kp.n_parts] = w;
      kp.part_col[kp.n_parts] = col;
      col += w;
      ++kp.n_parts;
      part_ranges.push_back(b.range());
    }
    if (rows == 0) continue;
    const MemRange big_range = big.range();
    std::span<const MemRange> reads =
        split ? std::span<const MemRange>(&big_range, 1) : std::span<const MemRange>(part_ranges);
    std::span<const MemRange> writes =
        split ? std::span<const MemRange>(part_ranges) : std::span<const MemRange>(&big_range, 1);
    MLXN_TRY(s.record(op, reads, writes, [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(parts, kp, ctx); }));
  }
  return Status::ok();
}

// concat and split share the checks: `big` is concat's output / split's input.
Status concat_or_split(Session& s, std::string_view op, const Buffer& big, int axis_in, std::span<const Buffer> parts,
                       bool split) {
  const char* big_name = split ? "x" : "out";
  const char* part_name = split ? "outputs" : "inputs";
  MLXN_TRY(check_buffer(op, big_name, s, big));
  if (parts.empty()) return invalid_argument(op, "no ", part_name);
  MLXN_ASSIGN_OR_RETURN(const int axis, normalize_axis(op, axis_in, big.rank()));
  int64_t total = 0;
  bool all_contiguous = big.is_contiguous();
  for (size_t j = 0; j < parts.size(); ++j) {
    const Buffer& b = parts[j];
    const std::string name = mlxn::detail::cat(part_name, "[", j, "]");
    MLXN_TRY(check_buffer(op, name, s, b));
    MLXN_TRY(check_same_dtype(op, name, b, big.dtype()));
    if (b.rank() != big.rank()) return invalid_argument(op, name, " has rank ", b.rank(), ", expected ", big.rank());
    for (int d = 0; d < big.rank(); ++d)
      if (d != axis && b.shape()[d] != big.shape()[d])
        return invalid_argument(op, name, " has shape ", b.shape(), ", which differs from ", big.shape(),
                                " outside axis ", axis);
    total += b.shape()[axis];
    MLXN_TRY(check_disjoint(op, name, b, big_name, big));
    if (split)
      for (size_t i = 0; i < j; ++i)
        MLXN_TRY(check_disjoint(op, name, b, mlxn::detail::cat(part_name, "[", i, "]"), parts[i]));
    all_contiguous = all_contiguous && b.is_contiguous();
  }
  if (total != big.shape()[axis])
    return invalid_argument(op, part_name, " add up to ", total, " along axis ", axis, ", ", big_name, " has ",
                            big.shape()[axis]);
  if (all_contiguous) return record_parts(s, op, big, axis, parts, split);
  // Strided views: one strided copy per part.
  if (is_quantized(big.dtype())) return unsupported(op, big.dtype(), " views must be contiguous");
  int64_t off = 0;
  for (const Buffer& b : parts) {
    MLXN_ASSIGN_OR_RETURN(Buffer piece, big.slice(axis, off, b.shape()[axis]));
    off += b.shape()[axis];
    if (b.numel() == 0) continue;
    MLXN_TRY(split ? copy(s, piece, b) : copy(s, b, piece));
  }
  return Status::ok();
}

}  // namespace

Status permute(Session& s, const Buffer& x, std::span<const int> perm, const Buffer& out) {
  constexpr std::string_view op = "permute";
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_buffer(op, "out", s, out));
  MLXN_TRY(check_plain(op, "x", x));
  MLXN_TRY(check_same_dtype(op, "out", out, x.dtype()));
  MLXN_TRY(check_contiguous(op, "out", out));
  const int rank = x.rank();
  if (rank > 4) return unsupported(op, "rank ", rank, " > 4");
  if (static_cast<int>(perm.size()) != rank)
    return invalid_argument(op, "perm has ", perm.size(), " entries for rank ", rank);
  bool seen[4] = {false, false, false, false};
  Shape want = x.shape();
  Strides src{};
  for (int d = 0; d < rank; ++d) {
    if (perm[d] < 0 || perm[d] >= rank || seen[perm[d]]) return invalid_argument(op, "perm is not a permutation");
    seen[perm[d]] = true;
    want[d] = x.shape()[perm[d]];
    src[d] = x.strides()[perm[d]];
  }
  if (out.shape() != want) return invalid_argument(op, "out has shape ", out.shape(), ", expected ", want);
  MLXN_TRY(check_disjoint(op, "x", x, "out", out));
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({x.dtype()})));
  if (out.numel() == 0) return Status::ok();

  // Collapse out's dimensions: drop size 1, merge neighbours x walks as one.
  int64_t shape[4], strides[4];
  int r = 0;
  for (int d = 0; d < rank; ++d) {
    if (want[d] == 1) continue;
    if (r > 0 && strides[r - 1] == src[d] * want[d]) {
      shape[r - 1] *= want[d];
      strides[r - 1] = src[d];
      continue;
    }
    shape[r] = want[d];
    strides[r] = src[d];
    ++r;
  }
  int tile = -1;
  if (r >= 2 && strides[r - 1] != 1)
    for (int d = 0; d < r - 1; ++d)
      if (strides[d] == 1) tile = d;
  if (tile < 0) {
    // Out's rows are x's rows (or x has no unit stride): a strided copy moves them (16-byte accesses where the rows
    // allow it).
    MLXN_ASSIGN_OR_RETURN(Buffer view, x.view_strided(0, x.dtype(), want, src));
    return copy(s, view, out);
  }
  kern::TransposeParams kp;
  kp.src = x.data();
  kp.dst = out.data();
  kp.t = x.dtype();
  kp.elem_bytes = static_cast<int>(dtype_size(x.dtype()));
  const int pad = 4 - r;
  for (int d = 0; d < r; ++d) {
    kp.shape[pad + d] = shape[d];
    kp.src_strides[pad + d] = strides[d];
  }
  kp.tile_dim = pad + tile;
  return s.record(op, {x.range()}, {out.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(transpose, kp, ctx); });
}

Status transpose(Session& s, const Buffer& x, const Buffer& out) {
  if (x.rank() < 2 || x.rank() > 4) return invalid_argument("transpose", "x has rank ", x.rank(), "; expected 2 to 4");
  int perm[4] = {0, 1, 2, 3};
  std::swap(perm[x.rank() - 2], perm[x.rank() - 1]);
  return permute(s, x, std::span<const int>(perm, static_cast<size_t>(x.rank())), out);
}

Status repeat(Session& s, const Buffer& x, std::span<const int64_t> reps, const Buffer& out) {
  constexpr std::string_view op = "repeat";
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_buffer(op, "out", s, out));
  MLXN_TRY(check_plain(op, "x", x));
  MLXN_TRY(check_same_dtype(op, "out", out, x.dtype()));
  MLXN_TRY(check_contiguous(op, "out", out));
  const int rank = x.rank();
  if (rank > 4) return unsupported(op, "rank ", rank, " > 4");
  if (static_cast<int>(reps.size()) != rank)
    return invalid_argument(op, "reps has ", reps.size(), " entries for rank ", rank);
  Shape want = x.shape();
  for (int d = 0; d < rank; ++d) {
    if (reps[d] < 0) return invalid_argument(op, "reps[", d, "] = ", reps[d], " is negative");
    want[d] = x.shape()[d] * reps[d];
  }
  if (out.shape() != want) return invalid_argument(op, "out has shape ", out.shape(), ", expected ", want);
  MLXN_TRY(check_disjoint(op, "x", x, "out", out));
  if (out.numel() == 0) return Status::ok();
  // x seen as [reps_0, n_0, reps_1, n_1, ...] with stride 0 over each reps dimension, and out as the same shape
  // (contiguous): one strided copy.
  int64_t dims[8], strides[8];
  for (int d = 0; d < rank; ++d) {
    dims[2 * d] = reps[d];
    dims[2 * d + 1] = x.shape()[d];
    strides[2 * d] = 0;
    strides[2 * d + 1] = x.strides()[d];
  }
  const Shape split_shape(dims, dims + 2 * rank);
  Strides split_strides{};
  for (int i = 0; i < 2 * rank; ++i) split_strides[i] = strides[i];
  MLXN_ASSIGN_OR_RETURN(Buffer src, x.view_strided(0, x.dtype(), split_shape, split_strides));
  MLXN_ASSIGN_OR_RETURN(Buffer dst, out.reshape(split_shape));
  return copy(s, src, dst);
}

Status concat(Session& s, std::span<const Buffer> inputs, int axis, const Buffer& out) {
  return concat_or_split(s, "concat", out, axis, inputs, false);
}

Status split(Session& s, const Buffer& x, int axis, std::span<const Buffer> outputs) {
  return concat_or_split(s, "split", x, axis, outputs, true);
}

Result<Buffer> slice_view(const Buffer& x, int axis, int64_t start, int64_t count) {
  if (!x.valid()) return invalid_argument("slice", "x is an empty buffer");
  MLXN_ASSIGN_OR_RETURN(const int a, normalize_axis("slice", axis, x.rank()));
  return x.slice(a, start, count);
}

Status slice(Session& s, const Buffer& x, int axis, int64_t start, const Buffer& out) {
  constexpr std::string_view op = "slice";
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_buffer(op, "out", s, out));
  MLXN_ASSIGN_OR_RETURN(const int a, normalize_axis(op, axis, x.rank()));
  if (out.rank() != x.rank()) return invalid_argument(op, "out has rank ", out.rank(), ", expected ", x.rank());
  MLXN_ASSIGN_OR_RETURN(Buffer view, x.slice(a, start, out.shape()[a]));
  if (view.shape() != out.shape())
    return invalid_argument(op, "out has shape ", out.shape(), ", expected ", view.shape());
  return copy(s, view, out);
}

namespace {

// Rows of a gather / scatter table: [rows, ...] with each row contiguous; the row stride may be larger.
struct Rows {
  int64_t rows = 0, elems = 0, stride_elems = 0;
};

Result<Rows> table_rows(std::string_view op, std::string_view arg, const Buffer& b) {
  if (b.rank() < 1) return invalid_argument(op, arg, " must have at least one dimension");
  Rows r;
  r.rows = b.shape()[0];
  r.elems = prod(b.shape(), 1, b.rank());
  r.stride_elems = b.rank() == 1 ? 1 : b.strides()[0];
  int64_t acc = 1;
  for (int d = b.rank() - 1; d >= 1; --d) {
    if (b.shape()[d] != 1 && b.strides()[d] != acc)
      return invalid_argument(op, arg, " rows must be contiguous (shape ", b.shape(), ")");
    acc *= b.shape()[d];
  }
  if (b.rank() == 1 && r.rows > 1 && b.strides()[0] != 1) r.stride_elems = b.strides()[0];
  if (r.rows > 1 && r.stride_elems < r.elems) return invalid_argument(op, arg, " rows overlap");
  return r;
}

Status gather_or_scatter(Session& s, std::string_view op, const Buffer& table, const Buffer& idx, const Buffer& dense,
                         bool scatter) {
  const char* table_name = scatter ? "out" : "table";
  const char* dense_name = scatter ? "src" : "out";
  MLXN_TRY(check_buffer(op, table_name, s, table));
  MLXN_TRY(check_buffer(op, "idx", s, idx));
  MLXN_TRY(check_buffer(op, dense_name, s, dense));
  if (idx.dtype() != DType::I32) return invalid_argument(op, "idx has dtype ", idx.dtype(), "; expected i32");
  MLXN_TRY(check_contiguous(op, "idx", idx));
  MLXN_TRY(check_contiguous(op, dense_name, dense));
  MLXN_TRY(check_same_dtype(op, dense_name, dense, table.dtype()));
  if (is_quantized(table.dtype()) && !table.is_contiguous())
    return invalid_argument(op, table_name, " must be contiguous for block type ", table.dtype());
  MLXN_ASSIGN_OR_RETURN(const Rows tr, table_rows(op, table_name, table));
  const int64_t n = idx.numel();
  Shape want = table.shape();
  if (want.rank() >= 1) want[0] = n;
  if (dense.shape() != want) return invalid_argument(op, dense_name, " has shape ", dense.shape(), ", expected ", want);
  MLXN_TRY(check_disjoint(op, table_name, table, dense_name, dense));
  MLXN_TRY(check_disjoint(op, "idx", idx, scatter ? table_name : dense_name, scatter ? table : dense));
  MLXN_ASSIGN_OR_RETURN(const int64_t row_bytes, bytes_of(op, table.dtype(), tr.elems));
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({table.dtype()})));
  if (n == 0 || tr.elems == 0) return Status::ok();
  kern::GatherParams kp;
  kp.table = table.data();
  kp.dense = dense.data();
  kp.idx = idx.data_as<const int32_t>();
  kp.n = n;
  kp.table_rows = tr.rows;
  kp.row_bytes = row_bytes;
  kp.table_stride =
      is_quantized(table.dtype()) ? row_bytes : tr.stride_elems * static_cast<int64_t>(dtype_size(table.dtype()));
  kp.dense_stride = row_bytes;
  kp.scatter = scatter;
  kp.t = table.dtype();
  auto fn = [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(gather, kp, ctx); };
  if (scatter) return s.record(op, {dense.range(), idx.range(), table.range()}, {table.range()}, fn);
  return s.record(op, {table.range(), idx.range()}, {dense.range()}, fn);
}

}  // namespace

Status gather_rows(Session& s, const Buffer& table, const Buffer& idx, const Buffer& out) {
  return gather_or_scatter(s, "gather_rows", table, idx, out, false);
}

Status scatter_rows(Session& s, const Buffer& src, const Buffer& idx, const Buffer& out) {
  return gather_or_scatter(s, "scatter_rows", out, idx, src, true);
}

Status qkv_split(Session& s, const Buffer& qkv, const Buffer& q, const Buffer& k, const Buffer& v) {
  constexpr std::string_view op = "qkv_split";
  MLXN_TRY(check_buffer(op, "qkv", s, qkv));
  const Buffer* outs[3] = {&q, &k, &v};
  const char* names[3] = {"q", "k", "v"};
  MLXN_ASSIGN_OR_RETURN(const Rows r, table_rows(op, "qkv", qkv));
  if (qkv.rank() < 2) return invalid_argument(op, "qkv must be [tokens, width]");
  kern::PartsParams kp;
  const int64_t es = static_cast<int64_t>(dtype_size(qkv.dtype()));
  MLXN_TRY(check_plain(op, "qkv", qkv));
  int64_t col = 0;
  for (int j = 0; j < 3; ++j) {
    const Buffer& b = *outs[j];
    MLXN_TRY(check_buffer(op, names[j], s, b));
    MLXN_TRY(check_same_dtype(op, names[j], b, qkv.dtype()));
    MLXN_TRY(check_contiguous(op, names[j], b));
    if (r.rows == 0) {
      if (b.numel() != 0) return invalid_argument(op, names[j], " has ", b.numel(), " elements for 0 tokens");
      continue;
    }
    if (b.numel() % r.rows != 0)
      return invalid_argument(op, names[j], " has ", b.numel(), " elements, not a multiple of ", r.rows, " tokens");
    MLXN_TRY(check_disjoint(op, names[j], b, "qkv", qkv));
    for (int i = 0; i < j; ++i) MLXN_TRY(check_disjoint(op, names[j], b, names[i], *outs[i]));
    const int64_t w = b.numel() / r.rows;
    kp.part[j] = b.data();
    kp.part_stride[j] = w * es;
    kp.part_bytes[j] = w * es;
    kp.part_col[j] = col;
    col += w * es;
  }
  if (r.rows == 0) return Status::ok();
  if (col != r.elems * es)
    return invalid_argument(op, "q, k and v rows add up to ", col / es, " elements; qkv rows have ", r.elems);
  MLXN_TRY(s.device().kernels().require("split", KernelRegistry::key({qkv.dtype()})));
  kp.big = qkv.data();
  kp.big_stride = r.stride_elems * es;
  kp.rows = r.rows;
  kp.n_parts = 3;
  kp.split = true;
  kp.t = qkv.dtype();
  return s.record(op, {qkv.range()}, {q.range(), k.range(), v.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(parts, kp, ctx); });
}

}  // namespace mlxn::ops
