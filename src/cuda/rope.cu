// Launcher of the RoPE family: picks the generated variant for x's dtype.
#include "cuda/kernel_table.h"
#include "kernels/rope.h"

namespace mlxn::cuda {

Status rope(const kern::RopeParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::RopeParams&, const ExecContext&);
  const std::string_view op = p.norm ? "rope_head_norm" : "rope";
  const std::string key = KernelRegistry::key({p.t});
  Fn fn = kernel_table().find<Fn>(op, key);
  if (fn == nullptr) return ctx.kernels->require(op, key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
