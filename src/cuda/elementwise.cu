// Launchers of the elementwise and copy families: pick the generated variant for the dtypes at hand. Same-dtype
// copies of every dtype share one launcher, defined here: a flat cudaMemcpyAsync, or the indexed kernel on
// unsigned integers of the element's size.
#include "cuda/elementwise.cuh"
#include "cuda/kernel_table.h"

namespace mlxn::cuda {
namespace {

template <typename P>
Status dispatch(std::string_view op, const std::string& key, const P& p, const ExecContext& ctx) {
  using Fn = Status (*)(const P&, const ExecContext&);
  Fn fn = kernel_table().find<Fn>(op, key);
  if (fn == nullptr) return ctx.kernels->require(op, key);
  return fn(p, ctx);
}

bool aligned_to(const void* p, int bytes) {
  return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) == 0;
}

}  // namespace

Status binary(const kern::BinaryParams& p, const ExecContext& ctx) {
  const std::string_view op = p.op == kern::BinaryOp::Add ? "add" : "mul";
  return dispatch(op, KernelRegistry::key({p.ta, p.tb, p.tout}), p, ctx);
}

Status unary(const kern::UnaryParams& p, const ExecContext& ctx) {
  const std::string_view op = p.op == kern::UnaryOp::Scale       ? "scale"
                              : p.op == kern::UnaryOp::AddScalar ? "add_scalar"
                                                                 : "cast";
  return dispatch(op, KernelRegistry::key({p.tx, p.tout}), p, ctx);
}

Status copy(const kern::CopyParams& p, const ExecContext& ctx) {
  return dispatch("copy", KernelRegistry::key({p.ts, p.td}), p, ctx);
}

Status launch_copy_bits(const kern::CopyParams& p, const ExecContext& ctx) {
  if (p.n == 0) return Status::ok();
  if (p.flat) {
    if (p.flat_bytes == 0 || p.src == p.dst) return Status::ok();
    return memcpy_status(
        cudaMemcpyAsync(p.dst, p.src, p.flat_bytes, cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(ctx.stream)),
        "copy");
  }
  // Neighbouring elements move as one element of twice the size while the innermost dimension is contiguous and
  // even in both views, every outer stride is even and both pointers are aligned to the wider size: rows of a slice
  // then move in up to 16-byte accesses.
  CopyIndex ix = copy_index(p);
  int64_t n = p.n;
  int bytes = p.elem_bytes;
  auto can_widen = [&] {
    if (bytes >= 16 || ix.src[0] != 1 || ix.dst[0] != 1 || ix.shape[0] % 2 != 0) return false;
    if (!aligned_to(p.src, 2 * bytes) || !aligned_to(p.dst, 2 * bytes)) return false;
    for (int d = 1; d < ix.rank; ++d)
      if (ix.src[d] % 2 != 0 || ix.dst[d] % 2 != 0) return false;
    return true;
  };
  while (can_widen()) {
    ix.shape[0] /= 2;
    for (int d = 1; d < ix.rank; ++d) {
      ix.src[d] /= 2;
      ix.dst[d] /= 2;
    }
    n /= 2;
    bytes *= 2;
  }
  switch (bytes) {
    case 1:
      enqueue_copy_strided<uint8_t, uint8_t>(p.src, p.dst, n, ix, ctx);
      break;
    case 2:
      enqueue_copy_strided<uint16_t, uint16_t>(p.src, p.dst, n, ix, ctx);
      break;
    case 4:
      enqueue_copy_strided<uint32_t, uint32_t>(p.src, p.dst, n, ix, ctx);
      break;
    case 8:
      enqueue_copy_strided<uint2, uint2>(p.src, p.dst, n, ix, ctx);
      break;
    case 16:
      enqueue_copy_strided<uint4, uint4>(p.src, p.dst, n, ix, ctx);
      break;
    default:
      return unsupported("copy", "no strided copy of ", bytes, "-byte elements");
  }
  return launch_status(cudaGetLastError(), "copy");
}

}  // namespace mlxn::cuda
