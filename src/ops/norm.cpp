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

namespace {

// Everything the general normalisation needs to validate: `r` / `h` invalid when absent, `group` the length of
// the normalised runs (0: x's last dimension).
struct NormArgs {
  std::string_view op;
  Buffer x, r, w, b, h, y;
  kern::NormKind kind = kern::NormKind::Rms;
  bool residual_after = false;
  bool wide_r = false;  // r may be f16 / bf16 when x is f32 (add_rms_norm)
  int64_t group = 0;
  float eps = 0.0f, w_offset = 0.0f;
};

Status check_param(std::string_view op, std::string_view arg, const Session& s, const Buffer& b, const Buffer& x) {
  MLXN_TRY(check_buffer(op, arg, s, b));
  MLXN_TRY(check_contiguous(op, arg, b));
  if (b.dtype() != x.dtype()) return unsupported(op, arg, " has dtype ", b.dtype(), "; expected x's (", x.dtype(), ")");
  if (b.shape() != x.shape()) return invalid_argument(op, arg, " has shape ", b.shape(), ", expected x's ", x.shape());
  return Status::ok();
}

Status norm_op(Session& s, const NormArgs& a) {
  const std::string_view op = a.op;
  const Buffer &x = a.x, &y = a.y;
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(check_buffer(op, "y", s, y));
  MLXN_TRY(check_float(op, "x", x));
  MLXN_TRY(check_float(op, "y", y));
  MLXN_TRY(check_contiguous(op, "x", x));
  MLXN_TRY(check_contiguous(op, "y", y));
  if (x.rank() < 1) return invalid_argument(op, "x must have at least one dimension");
  if (x.shape() != y.shape()) return invalid_argument(op, "y has shape ", y.shape(), ", expected x's ", x.shape());
  MLXN_TRY(detail::check_no_partial_overlap(op, "x", x, y));
  if (!(a.eps >= 0.0f) || !std::isfinite(a.eps)) return invalid_argument(op, "eps ", a.eps, " must be finite and >= 0");
  if (!std::isfinite(a.w_offset)) return invalid_argument(op, "weight_offset must be finite");
  const int64_t last = x.shape().back();
  int64_t cols = last;
  if (a.group != 0) {
    if (a.group < 0) return invalid_argument(op, "group_size ", a.group, " must be > 0");
    if (last % a.group != 0)
      return invalid_argument(op, "x's last dimension ", last, " is not a multiple of group_size ", a.group);
    cols = a.group;
  }
  if (cols == 0 && x.numel() != 0) return invalid_argument(op, "rows of length 0");
  if (a.r.valid() && a.wide_r && x.dtype() == DType::F32 &&
      (a.r.dtype() == DType::F16 || a.r.dtype() == DType::BF16)) {
    // The f16 / bf16 output of a block added to an f32 residual stream: same shape, any of the two dtypes.
    MLXN_TRY(check_buffer(op, "r", s, a.r));
    MLXN_TRY(check_contiguous(op, "r", a.r));
    if (a.r.shape() != x.shape())
      return invalid_argument(op, "r has shape ", a.r.shape(), ", expected x's ", x.shape());
    MLXN_TRY(detail::check_no_partial_overlap(op, "r", a.r, y));
  } else if (a.r.valid()) {
    MLXN_TRY(check_param(op, "r", s, a.r, x));
    MLXN_TRY(detail::check_no_partial_overlap(op, "r", a.r, y));
  }
  if (a.h.valid()) {
    MLXN_TRY(check_param(op, "h", s, a.h, x));
    MLXN_TRY(detail::check_no_partial_overlap(op, "x", x, a.h));
    MLXN_TRY(detail::check_no_partial_overlap(op, "r", a.r, a.h));
    if (a.h.range().overlaps(y.range())) return invalid_argument(op, "h and y overlap");
  }
  const Buffer* params[2] = {&a.w, &a.b};
  const char* names[2] = {"w", "b"};
  for (int i = 0; i < 2; ++i) {
    const Buffer& q = *params[i];
    if (!q.valid()) continue;
    MLXN_TRY(check_buffer(op, names[i], s, q));
    MLXN_TRY(check_contiguous(op, names[i], q));
    if (q.dtype() != x.dtype() && q.dtype() != DType::F32)
      return unsupported(op, names[i], " has dtype ", q.dtype(), "; expected x's (", x.dtype(), ") or f32");
    if (q.numel() != cols) return invalid_argument(op, names[i], " has ", q.numel(), " elements, expected ", cols);
    if (q.range().overlaps(y.range())) return invalid_argument(op, names[i], " and y overlap");
    if (a.h.valid() && q.range().overlaps(a.h.range())) return invalid_argument(op, names[i], " and h overlap");
  }
  if (a.w.valid() && a.b.valid() && a.w.dtype() != a.b.dtype())
    return unsupported(op, "w (", a.w.dtype(), ") and b (", a.b.dtype(), ") must share a dtype");

  kern::NormParams kp;
  kp.x = x.data();
  kp.r = a.r.valid() ? a.r.data() : nullptr;
  kp.w = a.w.valid() ? a.w.data() : nullptr;
  kp.b = a.b.valid() ? a.b.data() : nullptr;
  kp.h = a.h.valid() ? a.h.data() : nullptr;
  kp.y = y.data();
  kp.tx = x.dtype();
  kp.tw = a.w.valid() ? a.w.dtype() : a.b.valid() ? a.b.dtype() : x.dtype();
  kp.ty = y.dtype();
  kp.tr = a.r.valid() ? a.r.dtype() : x.dtype();
  kp.kind = a.kind;
  kp.residual_after = a.residual_after;
  kp.rows = cols == 0 ? 0 : x.numel() / cols;
  kp.cols = cols;
  kp.eps = a.eps;
  kp.w_offset = a.w_offset;
  kp.op = op.data();  // every caller passes a string literal
  const std::string key = kern::norm_key(kp, kp.tw);
  MLXN_TRY(s.device().kernels().require(op, key));
  if (kp.rows == 0) return Status::ok();
  MemRange reads[4];
  MemRange writes[2];
  size_t n_reads = 0, n_writes = 0;
  for (const Buffer* q : {&x, &a.r, &a.w, &a.b})
    if (q->valid()) reads[n_reads++] = q->range();
  for (const Buffer* q : {&y, &a.h})
    if (q->valid()) writes[n_writes++] = q->range();
  return s.record(op, std::span<const MemRange>(reads, n_reads), std::span<const MemRange>(writes, n_writes),
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(norm, kp, ctx); });
}

}  // namespace

Status add_rms_norm(Session& s, const Buffer& x, const Buffer& r, const Buffer& w, const Buffer& h, const Buffer& y,
                    const RmsNormParams& p) {
  constexpr std::string_view op = "add_rms_norm";
  if (!r.valid()) return invalid_argument(op, "r is an empty buffer");
  if (!h.valid()) return invalid_argument(op, "h is an empty buffer");
  return norm_op(s, {op, x, r, w, Buffer(), h, y, kern::NormKind::Rms, false, true, 0, p.eps, p.weight_offset});
}

Status rms_norm_add(Session& s, const Buffer& x, const Buffer& w, const Buffer& r, const Buffer& y,
                    const RmsNormParams& p) {
  constexpr std::string_view op = "rms_norm_add";
  if (!r.valid()) return invalid_argument(op, "r is an empty buffer");
  return norm_op(s, {op, x, r, w, Buffer(), Buffer(), y, kern::NormKind::Rms, true, false, 0, p.eps, p.weight_offset});
}

Status group_rms_norm(Session& s, const Buffer& x, const Buffer& w, const Buffer& y, int64_t group_size,
                      const RmsNormParams& p) {
  constexpr std::string_view op = "group_rms_norm";
  if (group_size <= 0) return invalid_argument(op, "group_size ", group_size, " must be > 0");
  return norm_op(
      s, {op, x, Buffer(), w, Buffer(), Buffer(), y, kern::NormKind::Rms, false, false, group_size, p.eps, p.weight_offset});
}

Status layer_norm(Session& s, const Buffer& x, const Buffer& w, const Buffer& b, const Buffer& y,
                  const LayerNormParams& p) {
  return norm_op(s, {"layer_norm", x, Buffer(), w, b, Buffer(), y, kern::NormKind::Layer, false, false, 0, p.eps, 0.0f});
}

Status l2_norm(Session& s, const Buffer& x, const Buffer& y, const L2NormParams& p) {
  return norm_op(s,
                 {"l2_norm", x, Buffer(), Buffer(), Buffer(), Buffer(), y, kern::NormKind::L2, false, false, 0, p.eps, 0.0f});
}

}  // namespace mlxn::ops
