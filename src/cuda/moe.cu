// Launchers of the MoE routing family: pick the generated variant for the dtypes at hand.
#include "cuda/kernel_table.h"
#include "kernels/moe.h"

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

Status moe_route(const kern::MoeRouteParams& p, const ExecContext& ctx) {
  return dispatch("moe_route", KernelRegistry::key({p.tl}), p, ctx);
}
Status moe_expert_lists(const kern::MoeListsParams& p, const ExecContext& ctx) {
  return dispatch("moe_expert_lists", "i32", p, ctx);
}
Status moe_weighted_reduce(const kern::MoeReduceParams& p, const ExecContext& ctx) {
  return dispatch("moe_weighted_reduce", KernelRegistry::key({p.tx, p.tout}), p, ctx);
}

}  // namespace mlxn::cuda
