#include "mlxn/ops/norm.h"

#include <cmath>

#include "kernels/norm.h"
#include "ops/common.h"

namespace mlxn::ops {

using detail::check_buffer;
using detail::check_contiguous;
using detail::check_float;

Status rms_norm(Session& s, const Buffer& x, const Buffer& w, const Buffer& y, const RmsNormParams& p) {
  constexpr std::string_view op = "rms_norm";
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_buffer(op, "y", s, y));
  MLXN_TRY(check_float(op, "x", x));
  MLXN_TRY(check_float(op, "y", y));
  MLXN_TRY(check_contiguous(op, "x", x));
  MLXN_TRY(check_contiguous(op, "y", y));
  if (x.rank() < 1) return invalid_argument(op, "x must have at least one dimension");
  if (x.shape() != y.shape()) return invalid_argument(op, "y has shape ", y.shape(), ", expected x's ", x.shape());
  MLXN_TRY(detail::check_no_partial_overlap(op, "x", x, y));
  if (!(p.eps >= 0.0f) || !std::isfinite(p.eps)) return invalid_argument(op, "eps ", p.eps, " must be finite and >= 0");
  if (!std::isfinite(p.weight_offset)) return invalid_argument(op, "weight_offset must be finite");
  const int64_t cols = x.shape().back();
  if (w.valid()) {
    MLXN_TRY(check_buffer(op, "w", s, w));
    MLXN_TRY(check_contiguous(op, "w", w));
    if (w.dtype() != x.dtype() && w.dtype() != DType::F32)
      return unsupported(op, "w has dtype ", w.dtype(), "; expected x's (", x.dtype(), ") or f32");
    if (w.numel() != cols) return invalid_argument(op, "w has ", w.numel(), " elements, expected ", cols);
    MLXN_TRY(detail::check_no_partial_overlap(op, "w", w, y));
    if (w.range().overlaps(y.range())) return invalid_argument(op, "w and y overlap");
  }
  if (cols == 0 && x.numel() != 0) return invalid_argument(op, "rows of length 0");

  kern::RmsNormParams kp;
  kp.x = x.data();
  kp.w = w.valid() ? w.data() : nullptr;
  kp.y = y.data();
  kp.tx = x.dtype();
  kp.tw = w.valid() ? w.dtype() : x.dtype();
  kp.ty = y.dtype();
  kp.rows = cols == 0 ? 0 : x.numel() / cols;
  kp.cols = cols;
  kp.eps = p.eps;
  kp.w_offset = p.weight_offset;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tx, kp.tw, kp.ty})));
  const MemRange reads[2] = {x.range(), w.valid() ? w.range() : MemRange{}};
  const MemRange writes[1] = {y.range()};
  return s.record(op, std::span<const MemRange>(reads, w.valid() ? 2 : 1), writes,
                  [kp](const ExecContext& ctx) {
                    return MLXN_BACKEND_CALL(rms_norm, kp, ctx);
                  });
}

}  // namespace mlxn::ops
