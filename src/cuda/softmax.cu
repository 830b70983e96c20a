// Launcher of the softmax family: picks the generated variant for the dtypes at hand.
#include "cuda/kernel_table.h"
#include "kernels/softmax.h"

namespace mlxn::cuda {

Status softmax(const kern::SoftmaxParams& p, const ExecContext& ctx) {
  using Fn = Status (*)(const kern::SoftmaxParams&, const ExecContext&);
  const char* op = p.log ? "log_softmax" : "softmax";
  const std::string key = KernelRegistry::key({p.tx, p.ty});
  Fn fn = kernel_table().find<Fn>(op, key);
  if (fn == nullptr) return ctx.kernels->require(op, key);
  return fn(p, ctx);
}

}  // namespace mlxn::cuda
