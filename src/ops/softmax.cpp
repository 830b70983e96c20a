#include "mlxn/ops/softmax.h"

#include <cmath>

#include "kernels/softmax.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

using detail::check_buffer;
using detail::check_contiguous;
using detail::check_float;

Status softmax_op(Session& s, std::string_view op, bool log, const Buffer& x, const Buffer& mask, const Buffer& y,
                  const SoftmaxParams& p) {
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_buffer(op, "y", s, y));
  MLXN_TRY(check_float(op, "x", x));
  MLXN_TRY(check_float(op, "y", y));
  MLXN_TRY(check_contiguous(op, "x", x));
  MLXN_TRY(check_contiguous(op, "y", y));
  if (x.rank() < 1) return invalid_argument(op, "x must have at least one dimension");
  if (x.shape() != y.shape()) return invalid_argument(op, "y has shape ", y.shape(), ", expected x's ", x.shape());
  MLXN_TRY(detail::check_no_partial_overlap(op, "x", x, y));
  if (!std::isfinite(p.scale)) return invalid_argument(op, "scale must be finite");
  const int64_t cols = x.shape().back();
  if (cols == 0 && x.numel() != 0) return invalid_argument(op, "rows of length 0");
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  int64_t mask_rows = 1;
  if (mask.valid()) {
    MLXN_TRY(check_buffer(op, "mask", s, mask));
    MLXN_TRY(check_float(op, "mask", mask));
    MLXN_TRY(check_contiguous(op, "mask", mask));
    if (mask.rank() < 1 || mask.shape().back() != cols)
      return invalid_argument(op, "mask has shape ", mask.shape(), "; its last dimension must be x's (", cols, ")");
    mask_rows = cols == 0 ? 1 : mask.numel() / cols;
    if (mask_rows == 0 || (rows != 0 && rows % mask_rows != 0))
      return invalid_argument(op, "mask has ", mask_rows, " rows, which does not divide x's ", rows);
    if (mask.range().overlaps(y.range())) return invalid_argument(op, "mask and y overlap");
  }
  kern::SoftmaxParams kp;
  kp.x = x.data();
  kp.mask = mask.valid() ? mask.data() : nullptr;
  kp.y = y.data();
  kp.tx = x.dtype();
  kp.tm = mask.valid() ? mask.dtype() : DType::F32;
  kp.ty = y.dtype();
  kp.rows = rows;
  kp.cols = cols;
  kp.mask_rows = mask_rows;
  kp.scale = p.scale;
  kp.log = log;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tx, kp.ty})));
  if (rows == 0) return Status::ok();
  const MemRange reads[2] = {x.range(), mask.valid() ? mask.range() : MemRange{}};
  const MemRange writes[1] = {y.range()};
  return s.record(op, std::span<const MemRange>(reads, mask.valid() ? 2 : 1), writes,
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(softmax, kp, ctx); });
}

}  // namespace

Status softmax(Session& s, const Buffer& x, const Buffer& mask, const Buffer& y, const SoftmaxParams& p) {
  return softmax_op(s, "softmax", false, x, mask, y, p);
}

Status log_softmax(Session& s, const Buffer& x, const Buffer& mask, const Buffer& y, const SoftmaxParams& p) {
  return softmax_op(s, "log_softmax", true, x, mask, y, p);
}

}  // namespace mlxn::ops
