#include "mlxn/ops/matmul.h"

#include "kernels/matmul.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

// Rows of `b` as (count, row stride): contiguous views of any rank, or 2-D views whose rows are contiguous.
Result<std::pair<int64_t, int64_t>> rows_of(std::string_view op, std::string_view arg, const Buffer& b) {
  if (b.rank() < 1) return invalid_argument(op, arg, " must have at least one dimension");
  if (b.is_contiguous()) return std::make_pair(b.shape().rows(), b.shape().back());
  if (b.rank() == 2 && b.strides()[1] == 1 && b.strides()[0] >= b.shape()[1])
    return std::make_pair(b.shape()[0], b.strides()[0]);
  return invalid_argument(op, arg, " must be contiguous or a 2-D view with contiguous rows (shape ", b.shape(), ")");
}

}  // namespace

Status matmul(Session& s, const Buffer& x, const Buffer& w, const Buffer& y) {
  constexpr std::string_view op = "matmul";
  MLXN_TRY(detail::check_buffer(op, "x", s, x));
  MLXN_TRY(detail::check_buffer(op, "w", s, w));
  MLXN_TRY(detail::check_buffer(op, "y", s, y));
  MLXN_TRY(detail::check_float(op, "x", x));
  MLXN_TRY(detail::check_float(op, "y", y));
  if (y.dtype() != x.dtype()) return unsupported(op, "y has dtype ", y.dtype(), "; expected x's (", x.dtype(), ")");
  if (w.rank() != 2) return invalid_argument(op, "w must be [N, K], got ", w.shape());
  MLXN_TRY(detail::check_contiguous(op, "w", w));
  MLXN_TRY(detail::check_float(op, "w", w));
  const int64_t N = w.shape()[0], K = w.shape()[1];
  MLXN_ASSIGN_OR_RETURN(auto xr, rows_of(op, "x", x));
  MLXN_ASSIGN_OR_RETURN(auto yr, rows_of(op, "y", y));
  if (x.shape().back() != K) return invalid_argument(op, "x has ", x.shape().back(), " columns, w has K = ", K);
  Shape want = x.shape();
  want[want.rank() - 1] = N;
  if (y.shape() != want) return invalid_argument(op, "y has shape ", y.shape(), ", expected ", want);
  if (y.range().overlaps(x.range()) || y.range().overlaps(w.range()))
    return invalid_argument(op, "y overlaps an input");

  kern::MatmulParams kp;
  kp.x = x.data();
  kp.w = w.data();
  kp.y = y.data();
  kp.tx = x.dtype();
  kp.tw = w.dtype();
  kp.ty = y.dtype();
  kp.M = xr.first;
  kp.N = N;
  kp.K = K;
  kp.ldx = xr.second;
  kp.ldy = yr.second;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tw, kp.tx})));
  const MemRange reads[2] = {x.range(), w.range()};
  const MemRange writes[1] = {y.range()};
  return s.record(op, reads, writes, [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(matmul, kp, ctx); });
}

}  // namespace mlxn::ops
