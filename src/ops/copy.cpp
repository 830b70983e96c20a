#include "mlxn/ops/copy.h"

#include "kernels/elementwise.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

// Same storage, offset, dtype, shape and strides: copying is a no-op.
bool same_view(const Buffer& a, const Buffer& b) {
  if (a.storage_id() != b.storage_id() || a.byte_offset() != b.byte_offset() || a.dtype() != b.dtype() ||
      a.shape() != b.shape())
    return false;
  for (int i = 0; i < a.rank(); ++i)
    if (a.shape()[i] != 1 && a.strides()[i] != b.strides()[i]) return false;
  return true;
}

// Drops size-1 dimensions and merges neighbours that both views walk as one, so a copy between two views that are
// contiguous in the same way ends as one flat dimension. Fills kp.rank, kp.shape and the strides.
void collapse_copy(const Buffer& src, const Buffer& dst, kern::CopyParams& kp) {
  int r = 0;
  for (int i = 0; i < src.rank(); ++i) {
    const int64_t n = src.shape()[i], ss = src.strides()[i], ds = dst.strides()[i];
    if (n == 1) continue;
    if (r > 0 && kp.src_strides[r - 1] == ss * n && kp.dst_strides[r - 1] == ds * n) {
      kp.shape[r - 1] *= n;
      kp.src_strides[r - 1] = ss;
      kp.dst_strides[r - 1] = ds;
      continue;
    }
    kp.shape[r] = n;
    kp.src_strides[r] = ss;
    kp.dst_strides[r] = ds;
    ++r;
  }
  kp.rank = r;
}

}  // namespace

Status copy(Session& s, const Buffer& src, const Buffer& dst) {
  constexpr std::string_view op = "copy";
  MLXN_TRY(detail::check_buffer(op, "src", s, src));
  MLXN_TRY(detail::check_buffer(op, "dst", s, dst));
  if (dst.shape() != src.shape())
    return invalid_argument(op, "dst has shape ", dst.shape(), ", expected src's ", src.shape());
  const DType ts = src.dtype(), td = dst.dtype();
  if (ts != td && !(is_compute_float(ts) && is_compute_float(td)))
    return unsupported(op, "cannot convert ", ts, " to ", td, ": only f32, f16 and bf16 convert among themselves");
  // Views of block types are always contiguous (Buffer::view_strided enforces it); the check keeps the flat copy
  // below honest should that ever change.
  if (is_quantized(ts) && (!src.is_contiguous() || !dst.is_contiguous()))
    return unsupported(op, ts, " copies must be between contiguous views");
  const bool no_op = same_view(src, dst);
  if (!no_op && src.range().overlaps(dst.range())) {
    const MemRange a = src.range(), b = dst.range();
    return invalid_argument(op, "src and dst overlap without being the same view (bytes [", a.begin, ", ", a.end,
                            ") and [", b.begin, ", ", b.end, "))");
  }

  kern::CopyParams kp;
  kp.src = src.data();
  kp.dst = dst.data();
  kp.ts = ts;
  kp.td = td;
  kp.n = src.numel();
  kp.elem_bytes = static_cast<int>(dtype_size(ts));
  collapse_copy(src, dst, kp);
  const bool contiguous = kp.rank == 0 || (kp.rank == 1 && kp.src_strides[0] == 1 && kp.dst_strides[0] == 1);
  kp.flat = ts == td && (contiguous || is_quantized(ts));
  kp.flat_bytes = kp.flat ? src.nbytes() : 0;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({ts, td})));
  if (kp.n == 0 || no_op) return Status::ok();
  return s.record(op, {src.range()}, {dst.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(copy, kp, ctx); });
}

}  // namespace mlxn::ops
