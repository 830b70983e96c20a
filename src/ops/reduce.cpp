#include "mlxn/ops/reduce.h"

#include "kernels/reduce.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

using detail::check_buffer;
using detail::check_contiguous;
using detail::check_float;

// x: a contiguous float tensor with non-empty rows; fills rows and cols.
Status check_rows(std::string_view op, const Session& s, const Buffer& x, int64_t& rows, int64_t& cols) {
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_float(op, "x", x));
  MLXN_TRY(check_contiguous(op, "x", x));
  if (x.rank() < 1) return invalid_argument(op, "x must have at least one dimension");
  cols = x.shape().back();
  if (cols == 0) return invalid_argument(op, "x has rows of length 0");
  if (cols > INT32_MAX) return unsupported(op, "rows of ", cols, " elements exceed int32 indices");
  rows = x.numel() / cols;
  return Status::ok();
}

// An output buffer of `dtype` (or any float when float_any) with exactly `n` contiguous elements, disjoint from x.
Status check_out(std::string_view op, std::string_view arg, const Session& s, const Buffer& b, const Buffer& x,
                 int64_t n, DType dtype, bool float_any) {
  MLXN_TRY(check_buffer(op, arg, s, b));
  if (float_any) {
    MLXN_TRY(check_float(op, arg, b));
  } else if (b.dtype() != dtype) {
    return unsupported(op, arg, " has dtype ", b.dtype(), "; expected ", dtype);
  }
  MLXN_TRY(check_contiguous(op, arg, b));
  if (b.numel() != n) return invalid_argument(op, arg, " has ", b.numel(), " elements, expected ", n);
  if (b.range().overlaps(x.range())) return invalid_argument(op, arg, " overlaps x");
  return Status::ok();
}

}  // namespace

size_t argmax_workspace_bytes(int64_t rows, int64_t cols) {
  const int64_t b = kern::argmax_split_blocks(rows, cols);
  return b > 1 ? static_cast<size_t>(rows * b * 8) : 0;
}

Status argmax(Session& s, const Buffer& x, const Buffer& idx, const Buffer& val, const Buffer& workspace) {
  constexpr std::string_view op = "argmax";
  int64_t rows = 0, cols = 0;
  MLXN_TRY(check_rows(op, s, x, rows, cols));
  MLXN_TRY(check_out(op, "idx", s, idx, x, rows, DType::I32, false));
  if (val.valid()) {
    MLXN_TRY(check_out(op, "val", s, val, x, rows, DType::F32, false));
    if (val.range().overlaps(idx.range())) return invalid_argument(op, "val overlaps idx");
  }
  kern::ArgmaxParams kp;
  kp.x = x.data();
  kp.idx = idx.data_as<int32_t>();
  kp.val = val.valid() ? val.data_as<float>() : nullptr;
  kp.tx = x.dtype();
  kp.rows = rows;
  kp.cols = cols;
  const size_t ws_need = argmax_workspace_bytes(rows, cols);
  const bool split = ws_need > 0 && workspace.valid() && workspace.nbytes() >= ws_need;
  if (split) {
    MLXN_TRY(check_buffer(op, "workspace", s, workspace));
    MLXN_TRY(check_contiguous(op, "workspace", workspace));
    for (const Buffer* b : {&x, &idx, &val})
      if (b->valid() && workspace.range().overlaps(b->range()))
        return invalid_argument(op, "workspace overlaps an operand");
    kp.ws = workspace.data();
    kp.split_blocks = static_cast<int>(kern::argmax_split_blocks(rows, cols));
  }
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tx})));
  if (rows == 0) return Status::ok();
  MemRange writes[3] = {idx.range()};
  size_t nw = 1;
  if (val.valid()) writes[nw++] = val.range();
  if (split) writes[nw++] = workspace.range();
  const MemRange reads[1] = {x.range()};
  return s.record(op, reads, std::span<const MemRange>(writes, nw),
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(argmax, kp, ctx); });
}

size_t topk_workspace_bytes(int64_t rows, int64_t cols, int k) {
  const int64_t chunks = kern::topk_chunks(cols);
  if (chunks <= 1 || k < 1) return 0;
  return static_cast<size_t>(rows * chunks * kern::topk_keep(cols, k) * 8);
}

Status topk(Session& s, const Buffer& x, int k, const Buffer& values, const Buffer& indices, const Buffer& workspace) {
  constexpr std::string_view op = "topk";
  int64_t rows = 0, cols = 0;
  MLXN_TRY(check_rows(op, s, x, rows, cols));
  if (k < 1 || k > kern::kTopKMax || k > cols)
    return invalid_argument(op, "k = ", k, " must be in [1, min(cols = ", cols, ", ", kern::kTopKMax, ")]");
  MLXN_TRY(check_out(op, "indices", s, indices, x, rows * k, DType::I32, false));
  if (values.valid()) {
    MLXN_TRY(check_out(op, "values", s, values, x, rows * k, x.dtype(), false));
    if (values.range().overlaps(indices.range())) return invalid_argument(op, "values overlaps indices");
  }
  kern::TopKParams kp;
  kp.x = x.data();
  kp.values = values.valid() ? values.data() : nullptr;
  kp.indices = indices.data_as<int32_t>();
  kp.tx = x.dtype();
  kp.rows = rows;
  kp.cols = cols;
  kp.k = k;
  kp.n_chunks = kern::topk_chunks(cols);
  const size_t ws_need = topk_workspace_bytes(rows, cols, k);
  if (ws_need > 0) {
    if (!workspace.valid())
      return invalid_argument(op, "rows of ", cols, " elements need a workspace of ", ws_need,
                              " bytes (topk_workspace_bytes)");
    MLXN_TRY(check_buffer(op, "workspace", s, workspace));
    MLXN_TRY(check_contiguous(op, "workspace", workspace));
    if (workspace.nbytes() < ws_need)
      return invalid_argument(op, "workspace has ", workspace.nbytes(), " bytes, expected at least ", ws_need);
    for (const Buffer* b : {&x, &values, &indices})
      if (b->valid() && workspace.range().overlaps(b->range()))
        return invalid_argument(op, "workspace overlaps an operand");
    kp.ws = workspace.data();
  }
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tx})));
  if (rows == 0) return Status::ok();
  MemRange writes[3] = {indices.range()};
  size_t nw = 1;
  if (values.valid()) writes[nw++] = values.range();
  if (ws_need > 0) writes[nw++] = workspace.range();
  const MemRange reads[1] = {x.range()};
  return s.record(op, reads, std::span<const MemRange>(writes, nw),
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(topk, kp, ctx); });
}

Status argsort(Session& s, const Buffer& x, const Buffer& indices, bool descending) {
  constexpr std::string_view op = "argsort";
  int64_t rows = 0, cols = 0;
  MLXN_TRY(check_rows(op, s, x, rows, cols));
  MLXN_TRY(check_out(op, "indices", s, indices, x, x.numel(), DType::I32, false));
  kern::ArgsortParams kp;
  kp.x = x.data();
  kp.indices = indices.data_as<int32_t>();
  kp.tx = x.dtype();
  kp.rows = rows;
  kp.cols = cols;
  kp.descending = descending;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tx})));
  if (rows == 0) return Status::ok();
  return s.record(op, {x.range()}, {indices.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(argsort, kp, ctx); });
}

namespace {

Status row_reduce(Session& s, std::string_view op, bool scan, const Buffer& x, const Buffer& out) {
  int64_t rows = 0, cols = 0;
  MLXN_TRY(check_rows(op, s, x, rows, cols));
  MLXN_TRY(check_out(op, "out", s, out, x, scan ? x.numel() : rows, DType::F32, true));
  kern::RowReduceParams kp;
  kp.x = x.data();
  kp.out = out.data();
  kp.tx = x.dtype();
  kp.tout = out.dtype();
  kp.rows = rows;
  kp.cols = cols;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tx, kp.tout})));
  if (rows == 0) return Status::ok();
  if (scan)
    return s.record(op, {x.range()}, {out.range()},
                    [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(cumsum, kp, ctx); });
  return s.record(op, {x.range()}, {out.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(row_sum, kp, ctx); });
}

}  // namespace

Status row_sum(Session& s, const Buffer& x, const Buffer& out) { return row_reduce(s, "row_sum", false, x, out); }
Status cumsum(Session& s, const Buffer& x, const Buffer& out) { return row_reduce(s, "cumsum", true, x, out); }

}  // namespace mlxn::ops
