// Launcher of the sampling family: picks the generated variant for the logits' dtype.
#include "cuda/kernel_table.h"
#include "kernels/sample.h"

namespace mlxn::cuda {

Status sample(const kern::SampleParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::SampleParams&, const ExecContext&);
  const std::string key = KernelRegistry::key({p.tl});
  Fn fn = kernel_table().find<Fn>("sample", key);
  if (fn == nullptr) return ctx.kernels->require("sample", key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
