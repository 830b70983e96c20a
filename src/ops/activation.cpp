#include "mlxn/ops/activation.h"

#include <cmath>

#include "kernels/activation.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

using detail::check_buffer;
using detail::check_contiguous;
using detail::check_float;

}  // namespace

kern::ActOp detail::act_op(Activation a) {
  switch (a) {
    case Activation::Silu:
      return kern::ActOp::Silu;
    case Activation::Gelu:
      return kern::ActOp::GeluErf;
    case Activation::GeluTanh:
      return kern::ActOp::GeluTanh;
    case Activation::Sigmoid:
      return kern::ActOp::Sigmoid;
  }
  return kern::ActOp::Silu;
}

namespace {

using detail::act_op;

// Registry names, one per (function, unary / gated) pair.
const char* unary_name(kern::ActOp op) {
  switch (op) {
    case kern::ActOp::Silu:
      return "silu";
    case kern::ActOp::GeluErf:
      return "gelu";
    case kern::ActOp::GeluTanh:
      return "gelu_tanh";
    case kern::ActOp::Sigmoid:
      return "sigmoid";
    case kern::ActOp::Softcap:
      return "softcap";
  }
  return "activation";
}
const char* gated_name(kern::ActOp op) {
  switch (op) {
    case kern::ActOp::Silu:
      return "swiglu";
    case kern::ActOp::GeluErf:
      return "geglu";
    case kern::ActOp::GeluTanh:
      return "geglu_tanh";
    case kern::ActOp::Sigmoid:
      return "sigmoid_mul";
    case kern::ActOp::Softcap:
      break;
  }
  return "glu";
}

bool valid_act(Activation a) { return static_cast<unsigned>(a) <= static_cast<unsigned>(Activation::Sigmoid); }

Status io_checks(std::string_view op, const Session& s, std::string_view arg, const Buffer& in, const Buffer& y) {
  MLXN_TRY(check_buffer(op, arg, s, in));
  MLXN_TRY(check_float(op, arg, in));
  MLXN_TRY(check_contiguous(op, arg, in));
  return detail::check_no_partial_overlap(op, arg, in, y);
}

Status record(Session& s, const kern::ActivationParams& kp, std::span<const MemRange> reads, const Buffer& y) {
  MLXN_TRY(s.device().kernels().require(kp.name, KernelRegistry::key({kp.tx, kp.ty})));
  if (kp.rows == 0 || kp.cols == 0) return Status::ok();
  const MemRange writes[1] = {y.range()};
  return s.record(kp.name, reads, writes,
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(activation, kp, ctx); });
}

Status unary(Session& s, kern::ActOp op, const Buffer& x, const Buffer& y, float cap) {
  const std::string_view name = unary_name(op);
  MLXN_TRY(check_buffer(name, "y", s, y));
  MLXN_TRY(check_float(name, "y", y));
  MLXN_TRY(check_contiguous(name, "y", y));
  MLXN_TRY(io_checks(name, s, "x", x, y));
  if (x.shape() != y.shape()) return invalid_argument(name, "y has shape ", y.shape(), ", expected x's ", x.shape());
  kern::ActivationParams kp;
  kp.x = x.data();
  kp.y = y.data();
  kp.tx = x.dtype();
  kp.ty = y.dtype();
  kp.op = op;
  kp.rows = 1;
  kp.cols = x.numel();
  kp.x_stride = kp.cols;
  kp.cap = cap;
  kp.name = unary_name(op);
  const MemRange reads[1] = {x.range()};
  return record(s, kp, reads, y);
}

}  // namespace

Status activation(Session& s, Activation act, const Buffer& x, const Buffer& y) {
  if (!valid_act(act)) return invalid_argument("activation", "unknown activation ", static_cast<int>(act));
  return unary(s, act_op(act), x, y, 1.0f);
}

Status softcap(Session& s, const Buffer& x, const Buffer& y, float cap) {
  if (!(cap > 0.0f) || !std::isfinite(cap)) return invalid_argument("softcap", "cap ", cap, " must be finite and > 0");
  return unary(s, kern::ActOp::Softcap, x, y, cap);
}

Status glu(Session& s, Activation act, const Buffer& gate, const Buffer& up, const Buffer& y) {
  if (!valid_act(act)) return invalid_argument("glu", "unknown activation ", static_cast<int>(act));
  const kern::ActOp op = act_op(act);
  const std::string_view name = gated_name(op);
  MLXN_TRY(check_buffer(name, "y", s, y));
  MLXN_TRY(check_float(name, "y", y));
  MLXN_TRY(check_contiguous(name, "y", y));
  MLXN_TRY(io_checks(name, s, "gate", gate, y));
  MLXN_TRY(io_checks(name, s, "up", up, y));
  if (up.dtype() != gate.dtype())
    return unsupported(name, "up has dtype ", up.dtype(), "; expected gate's (", gate.dtype(), ")");
  if (up.shape() != gate.shape())
    return invalid_argument(name, "up has shape ", up.shape(), ", expected gate's ", gate.shape());
  if (y.shape() != gate.shape())
    return invalid_argument(name, "y has shape ", y.shape(), ", expected gate's ", gate.shape());
  kern::ActivationParams kp;
  kp.x = gate.data();
  kp.u = up.data();
  kp.y = y.data();
  kp.tx = gate.dtype();
  kp.ty = y.dtype();
  kp.op = op;
  kp.rows = 1;
  kp.cols = gate.numel();
  kp.x_stride = kp.u_stride = kp.cols;
  kp.name = gated_name(op);
  const MemRange reads[2] = {gate.range(), up.range()};
  return record(s, kp, reads, y);
}

Status glu_split(Session& s, Activation act, const Buffer& gate_up, const Buffer& y) {
  if (!valid_act(act)) return invalid_argument("glu", "unknown activation ", static_cast<int>(act));
  const kern::ActOp op = act_op(act);
  const std::string_view name = gated_name(op);
  MLXN_TRY(check_buffer(name, "y", s, y));
  MLXN_TRY(check_float(name, "y", y));
  MLXN_TRY(check_contiguous(name, "y", y));
  MLXN_TRY(check_buffer(name, "gate_up", s, gate_up));
  MLXN_TRY(check_float(name, "gate_up", gate_up));
  MLXN_TRY(check_contiguous(name, "gate_up", gate_up));
  if (gate_up.rank() < 1) return invalid_argument(name, "gate_up must have at least one dimension");
  const int64_t two_f = gate_up.shape().back();
  if (two_f % 2 != 0) return invalid_argument(name, "gate_up's last dimension ", two_f, " is odd");
  Shape expect = gate_up.shape();
  expect[expect.rank() - 1] = two_f / 2;
  if (y.shape() != expect) return invalid_argument(name, "y has shape ", y.shape(), ", expected ", expect);
  // y is half of gate_up's size, so it cannot be gate_up itself: any overlap is an error.
  if (gate_up.range().overlaps(y.range())) return invalid_argument(name, "gate_up and y overlap");
  kern::ActivationParams kp;
  kp.x = gate_up.data();
  kp.u = static_cast<const char*>(gate_up.data()) + static_cast<size_t>(two_f / 2) * dtype_size(gate_up.dtype());
  kp.y = y.data();
  kp.tx = gate_up.dtype();
  kp.ty = y.dtype();
  kp.op = op;
  kp.cols = two_f / 2;
  kp.rows = kp.cols == 0 ? 0 : y.numel() / kp.cols;
  kp.x_stride = kp.u_stride = two_f;
  kp.name = gated_name(op);
  const MemRange reads[1] = {gate_up.range()};
  return record(s, kp, reads, y);
}

}  // namespace mlxn::ops
