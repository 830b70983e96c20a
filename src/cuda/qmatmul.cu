// Launchers of the quantized matmul family: find the generated variant for (weight format, x dtype), and for the
// expert-routed matmul (weight format or float type, x dtype).
#include "cuda/kernel_table.h"
#include "kernels/qmatmul.h"

namespace mlxn::cuda {

Status qmatmul(const kern::QMatmulParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::QMatmulParams&, const ExecContext&);
  const std::string key = p.layout == kern::QWeight::Affine
                              ? "affine" + std::to_string(p.bits) + "." + std::string(dtype_name(p.tx))
                              : KernelRegistry::key({p.tw, p.tx});
  Fn fn = kernel_table().find<Fn>("qmatmul", key);
  if (fn == nullptr) return ctx.kernels->require("qmatmul", key);
  return fn(p, ctx);
}

Status matmul_experts(const kern::ExpertsParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::ExpertsParams&, const ExecContext&);
  const std::string key = KernelRegistry::key({p.tw, p.tx});
  Fn fn = kernel_table().find<Fn>("matmul_experts", key);
  if (fn == nullptr) return ctx.kernels->require("matmul_experts", key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
