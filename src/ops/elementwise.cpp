#include "mlxn/ops/elementwise.h"

#include "kernels/elementwise.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

using detail::check_buffer;
using detail::check_contiguous;
using detail::check_float;

// b's element strides over a's index space (0 on broadcast dimensions and on a's leading dimensions b lacks), or an
// error when b does not broadcast to a.
Result<Strides> broadcast_strides(std::string_view op, const Buffer& a, const Buffer& b) {
  const int ra = a.rank(), rb = b.rank();
  auto mismatch = [&] {
    return invalid_argument(op, "b has shape ", b.shape(), ", which does not broadcast to a's ", a.shape());
  };
  if (rb > ra) return mismatch();
  const Strides bs = contiguous_strides(b.shape());
  Strides out{};
  for (int i = 0; i < rb; ++i) {
    const int ia = ra - rb + i;
    if (b.shape()[i] == a.shape()[ia]) {
      out[ia] = bs[i];
    } else if (b.shape()[i] == 1) {
      out[ia] = 0;
    } else {
      return mismatch();
    }
  }
  return out;
}

// Drops size-1 dimensions and merges neighbours that b walks as one (both broadcast, or contiguous in b), so the
// kernels' index math runs over as few dimensions as possible. Fills kp.rank, kp.shape, kp.b_strides and b_same.
void collapse_broadcast(const Shape& shape, const Strides& b_strides, kern::BinaryParams& kp) {
  int r = 0;
  for (int i = 0; i < shape.rank(); ++i) {
    if (shape[i] == 1) continue;
    if (r > 0 && kp.b_strides[r - 1] == b_strides[i] * shape[i]) {
      kp.shape[r - 1] *= shape[i];
      kp.b_strides[r - 1] = b_strides[i];
      continue;
    }
    kp.shape[r] = shape[i];
    kp.b_strides[r] = b_strides[i];
    ++r;
  }
  kp.rank = r;
  kp.b_same = r == 0 || (r == 1 && kp.b_strides[0] == 1);
}

Status binary(Session& s, std::string_view op, kern::BinaryOp bop, const Buffer& a, const Buffer& b,
              const Buffer& out) {
  MLXN_TRY(check_buffer(op, "a", s, a));
  MLXN_TRY(check_buffer(op, "b", s, b));
  MLXN_TRY(check_buffer(op, "out", s, out));
  MLXN_TRY(check_float(op, "a", a));
  MLXN_TRY(check_float(op, "b", b));
  MLXN_TRY(check_float(op, "out", out));
  MLXN_TRY(check_contiguous(op, "a", a));
  MLXN_TRY(check_contiguous(op, "b", b));
  MLXN_TRY(check_contiguous(op, "out", out));
  MLXN_ASSIGN_OR_RETURN(const Strides b_strides, broadcast_strides(op, a, b));
  if (out.shape() != a.shape())
    return invalid_argument(op, "out has shape ", out.shape(), ", expected a's ", a.shape());
  MLXN_TRY(detail::check_no_partial_overlap(op, "a", a, out));
  MLXN_TRY(detail::check_no_partial_overlap(op, "b", b, out));

  kern::BinaryParams kp;
  kp.a = a.data();
  kp.b = b.data();
  kp.out = out.data();
  kp.ta = a.dtype();
  kp.tb = b.dtype();
  kp.tout = out.dtype();
  kp.op = bop;
  kp.n = a.numel();
  collapse_broadcast(a.shape(), b_strides, kp);
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.ta, kp.tb, kp.tout})));
  if (kp.n == 0) return Status::ok();
  return s.record(op, {a.range(), b.range()}, {out.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(binary, kp, ctx); });
}

Status unary(Session& s, std::string_view op, kern::UnaryOp uop, const Buffer& x, Scalar k, const Buffer& out) {
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_buffer(op, "out", s, out));
  MLXN_TRY(check_float(op, "x", x));
  MLXN_TRY(check_float(op, "out", out));
  MLXN_TRY(check_contiguous(op, "x", x));
  MLXN_TRY(check_contiguous(op, "out", out));
  if (out.shape() != x.shape())
    return invalid_argument(op, "out has shape ", out.shape(), ", expected x's ", x.shape());
  MLXN_TRY(detail::check_no_partial_overlap(op, "x", x, out));
  MLXN_TRY(detail::check_step_slot(op, k.step_slot));

  kern::UnaryParams kp;
  kp.x = x.data();
  kp.out = out.data();
  kp.tx = x.dtype();
  kp.tout = out.dtype();
  kp.op = uop;
  kp.n = x.numel();
  kp.value = k.value;
  kp.step_slot = k.step_slot;  // read by the kernel when it runs, so graph replays see the slot's current value
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tx, kp.tout})));
  // Nothing to do: no elements, or a same-dtype cast onto itself.
  if (kp.n == 0 || (uop == kern::UnaryOp::Cast && kp.x == kp.out)) return Status::ok();
  return s.record(op, {x.range()}, {out.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(unary, kp, ctx); });
}

}  // namespace

Status add(Session& s, const Buffer& a, const Buffer& b, const Buffer& out) {
  return binary(s, "add", kern::BinaryOp::Add, a, b, out);
}

Status mul(Session& s, const Buffer& a, const Buffer& b, const Buffer& out) {
  return binary(s, "mul", kern::BinaryOp::Mul, a, b, out);
}

Status scale(Session& s, const Buffer& x, Scalar k, const Buffer& out) {
  return unary(s, "scale", kern::UnaryOp::Scale, x, k, out);
}

Status add_scalar(Session& s, const Buffer& x, Scalar k, const Buffer& out) {
  return unary(s, "add_scalar", kern::UnaryOp::AddScalar, x, k, out);
}

Status cast(Session& s, const Buffer& x, const Buffer& out) {
  return unary(s, "cast", kern::UnaryOp::Cast, x, Scalar{}, out);
}

}  // namespace mlxn::ops
