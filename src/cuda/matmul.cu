// Launcher of the matmul family: M <= 16 (decode, speculative batches) runs our bandwidth-bound kernel; larger M
// runs cuBLASLt where the dtypes allow it, else tiles of our kernel.
#include "cuda/blas.h"
#include "cuda/kernel_table.h"

namespace mlxn::cuda {

inline constexpr int64_t kGemvMaxM = 16;

Status matmul(const kern::MatmulParams& p, const ExecContext& ctx) {
  if (p.M > kGemvMaxM && blas_supports(p)) return blas_matmul(p, ctx);
  using Fn = Status (*)(const kern::MatmulParams&, const ExecContext&);
  const std::string key = KernelRegistry::key({p.tw, p.tx});
  Fn fn = kernel_table().find<Fn>("matmul", key);
  if (fn == nullptr) return ctx.kernels->require("matmul", key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
