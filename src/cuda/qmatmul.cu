// Launcher of the quantized matmul family: finds the generated variant for (weight format, x dtype).
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

}  // namespace mlxn::cuda
