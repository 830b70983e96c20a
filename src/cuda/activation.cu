// Launcher of the activation family: picks the generated variant for the dtypes at hand.
#include "cuda/kernel_table.h"
#include "kernels/activation.h"

namespace mlxn::cuda {

Status activation(const kern::ActivationParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::ActivationParams&, const ExecContext&);
  const std::string key = KernelRegistry::key({p.tx, p.ty});
  Fn fn = kernel_table().find<Fn>(p.name, key);
  if (fn == nullptr) return ctx.kernels->require(p.name, key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
