// Launcher of the normalisation family: picks the generated variant for the dtypes at hand.
#include "cuda/kernel_table.h"
#include "kernels/norm.h"

namespace mlxn::cuda {

Status rms_norm(const kern::RmsNormParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::RmsNormParams&, const ExecContext&);
  // Without a weight the weight dtype does not matter: use the variant whose weight type is x's.
  const DType tw = p.w ? p.tw : p.tx;
  const std::string key = KernelRegistry::key({p.tx, tw, p.ty});
  Fn fn = kernel_table().find<Fn>("rms_norm", key);
  if (fn == nullptr) return ctx.kernels->require("rms_norm", key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda

namespace mlxn::cuda {

Status norm(const kern::NormParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::NormParams&, const ExecContext&);
  // Without w and b the weight dtype does not matter: use the variant whose weight type is x's.
  const DType tw = p.w || p.b ? p.tw : p.tx;
  const std::string key = kern::norm_key(p, tw);
  Fn fn = kernel_table().find<Fn>(p.op, key);
  if (fn == nullptr) return ctx.kernels->require(p.op, key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
