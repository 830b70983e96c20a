// Launchers of the reduction family: pick the generated variant for the dtypes at hand.
#include "cuda/kernel_table.h"
#include "kernels/reduce.h"

namespace mlxn::cuda {
namespace {

template <typename P>
Status dispatch(std::string_view op, const std::string& key, const P& p, const ExecContext& ctx) {
  using Fn = Status (*)(const P&, const ExecContext&);
  Fn fn = kernel_table().find<Fn>(op, key);
  if (fn == nullptr) return ctx.kernels->require(op, key);
  return fn(p, ctx);
}

}  // namespace

Status argmax(const kern::ArgmaxParams& p, const ExecContext& ctx) {
  return dispatch("argmax", KernelRegistry::key({p.tx}), p, ctx);
}
Status topk(const kern::TopKParams& p, const ExecContext& ctx) {
  return dispatch("topk", KernelRegistry::key({p.tx}), p, ctx);
}
Status argsort(const kern::ArgsortParams& p, const ExecContext& ctx) {
  return dispatch("argsort", KernelRegistry::key({p.tx}), p, ctx);
}
Status row_sum(const kern::RowReduceParams& p, const ExecContext& ctx) {
  return dispatch("row_sum", KernelRegistry::key({p.tx, p.tout}), p, ctx);
}
Status cumsum(const kern::RowReduceParams& p, const ExecContext& ctx) {
  return dispatch("cumsum", KernelRegistry::key({p.tx, p.tout}), p, ctx);
}

}  // namespace mlxn::cuda
