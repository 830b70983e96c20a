#include "ops/common.h"

namespace mlxn::ops::detail {

Status check_buffer(std::string_view op, std::string_view arg, const Session& s, const Buffer& b) {
  if (!b.valid()) return invalid_argument(op, arg, " is an empty buffer");
  if (b.device() != s.device())
    return invalid_argument(op, arg, " lives on ", backend_name(b.backend()), ", the session on ",
                            backend_name(s.device().backend()));
  if (!b.shape().valid()) return invalid_argument(op, arg, " has an invalid shape ", b.shape());
  return Status::ok();
}

Status check_float(std::string_view op, std::string_view arg, const Buffer& b) {
  if (!is_compute_float(b.dtype()))
    return unsupported(op, arg, " has dtype ", b.dtype(), "; expected f32, f16 or bf16");
  return Status::ok();
}

Status check_contiguous(std::string_view op, std::string_view arg, const Buffer& b) {
  if (!b.is_contiguous()) return invalid_argument(op, arg, " must be contiguous (shape ", b.shape(), ")");
  return Status::ok();
}

Status check_no_partial_overlap(std::string_view op, std::string_view in_arg, const Buffer& in, const Buffer& out) {
  const MemRange a = in.range(), b = out.range();
  if (!a.overlaps(b)) return Status::ok();
  if (a.begin == b.begin && a.end == b.end && in.dtype() == out.dtype() && in.is_contiguous() &&
      out.is_contiguous())
    return Status::ok();
  return invalid_argument(op, in_arg, " and out overlap without being the same view (bytes [", a.begin, ", ", a.end,
                          ") and [", b.begin, ", ", b.end, "))");
}

Status check_step_slot(std::string_view op, int slot) {
  if (slot < -1 || slot >= kStepParamSlots)
    return invalid_argument(op, "step-parameter slot ", slot, " is not in [0, ", kStepParamSlots, ")");
  return Status::ok();
}

}  // namespace mlxn::ops::detail
