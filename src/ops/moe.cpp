#include "mlxn/ops/moe.h"

#include <cmath>

#include "kernels/moe.h"
#include "ops/common.h"

namespace mlxn::ops {
namespace {

using detail::check_buffer;
using detail::check_contiguous;

Status check_typed(std::string_view op, std::string_view arg, const Session& s, const Buffer& b, DType t, int64_t n) {
  MLXN_TRY(check_buffer(op, arg, s, b));
  MLXN_TRY(check_contiguous(op, arg, b));
  if (b.dtype() != t) return unsupported(op, arg, " has dtype ", b.dtype(), "; expected ", t);
  if (b.numel() != n) return invalid_argument(op, arg, " has ", b.numel(), " elements, expected ", n);
  return Status::ok();
}

// No output overlaps another operand.
Status check_disjoint(std::string_view op, std::initializer_list<std::pair<const char*, const Buffer*>> outs,
                      std::initializer_list<const Buffer*> ins) {
  for (auto [name, o] : outs) {
    for (const Buffer* i : ins)
      if (i->valid() && o->range().overlaps(i->range())) return invalid_argument(op, name, " overlaps an input");
    for (auto [name2, o2] : outs)
      if (o != o2 && o->range().overlaps(o2->range())) return invalid_argument(op, name, " overlaps ", name2);
  }
  return Status::ok();
}

}  // namespace

Status moe_route(Session& s, const Buffer& logits, const Buffer& bias, const Buffer& expert_scale, const Buffer& ids,
                 const Buffer& weights, const MoeRouteParams& p) {
  constexpr std::string_view op = "moe_route";
  MLXN_TRY(check_buffer(op, "logits", s, logits));
  MLXN_TRY(detail::check_float(op, "logits", logits));
  MLXN_TRY(check_contiguous(op, "logits", logits));
  if (logits.rank() != 2) return invalid_argument(op, "logits must be [tokens, n_experts], got ", logits.shape());
  const int64_t tokens = logits.shape()[0], e = logits.shape()[1];
  if (e < 1 || e > kern::kMoeMaxExperts)
    return unsupported(op, "n_experts = ", e, " must be in [1, ", kern::kMoeMaxExperts, "]");
  if (p.k < 1 || p.k > kern::kMoeMaxTopK || p.k > e)
    return invalid_argument(op, "k = ", p.k, " must be in [1, min(n_experts = ", e, ", ", kern::kMoeMaxTopK, ")]");
  if (p.softmax_after_topk && p.scoring != MoeScoring::Softmax)
    return invalid_argument(op, "softmax_after_topk needs softmax scoring");
  if (!std::isfinite(p.routed_scale)) return invalid_argument(op, "routed_scale must be finite");
  if (bias.valid()) MLXN_TRY(check_typed(op, "bias", s, bias, DType::F32, e));
  if (expert_scale.valid()) MLXN_TRY(check_typed(op, "expert_scale", s, expert_scale, DType::F32, e));
  MLXN_TRY(check_typed(op, "ids", s, ids, DType::I32, tokens * p.k));
  MLXN_TRY(check_typed(op, "weights", s, weights, DType::F32, tokens * p.k));
  MLXN_TRY(check_disjoint(op, {{"ids", &ids}, {"weights", &weights}}, {&logits, &bias, &expert_scale}));

  kern::MoeRouteParams kp;
  kp.logits = logits.data();
  kp.tl = logits.dtype();
  kp.bias = bias.valid() ? bias.data_as<float>() : nullptr;
  kp.expert_scale = expert_scale.valid() ? expert_scale.data_as<float>() : nullptr;
  kp.ids = ids.data_as<int32_t>();
  kp.weights = weights.data_as<float>();
  kp.tokens = tokens;
  kp.n_experts = static_cast<int>(e);
  kp.k = p.k;
  kp.sigmoid = p.scoring == MoeScoring::Sigmoid;
  kp.softmax_after_topk = p.softmax_after_topk;
  kp.renormalize = p.renormalize;
  kp.routed_scale = p.routed_scale;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tl})));
  if (tokens == 0) return Status::ok();
  MemRange reads[3] = {logits.range()};
  size_t nr = 1;
  if (kp.bias) reads[nr++] = bias.range();
  if (kp.expert_scale) reads[nr++] = expert_scale.range();
  const MemRange writes[2] = {ids.range(), weights.range()};
  return s.record(op, std::span<const MemRange>(reads, nr), writes,
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(moe_route, kp, ctx); });
}

Status moe_expert_lists(Session& s, const Buffer& ids, int n_experts, const Buffer& counts, const Buffer& offsets,
                        const Buffer& perm) {
  constexpr std::string_view op = "moe_expert_lists";
  MLXN_TRY(check_buffer(op, "ids", s, ids));
  MLXN_TRY(check_contiguous(op, "ids", ids));
  if (ids.dtype() != DType::I32) return unsupported(op, "ids has dtype ", ids.dtype(), "; expected i32");
  if (ids.rank() != 2) return invalid_argument(op, "ids must be [tokens, k], got ", ids.shape());
  if (n_experts < 1 || n_experts > kern::kMoeMaxExperts)
    return unsupported(op, "n_experts = ", n_experts, " must be in [1, ", kern::kMoeMaxExperts, "]");
  const int64_t tokens = ids.shape()[0], k = ids.shape()[1];
  if (k < 1 || k > kern::kMoeMaxTopK)
    return invalid_argument(op, "k = ", k, " must be in [1, ", kern::kMoeMaxTopK, "]");
  if (tokens * k > INT32_MAX) return unsupported(op, tokens * k, " slots exceed int32");
  MLXN_TRY(check_typed(op, "counts", s, counts, DType::I32, n_experts));
  MLXN_TRY(check_typed(op, "offsets", s, offsets, DType::I32, n_experts + 1));
  MLXN_TRY(check_typed(op, "perm", s, perm, DType::I32, tokens * k));
  MLXN_TRY(check_disjoint(op, {{"counts", &counts}, {"offsets", &offsets}, {"perm", &perm}}, {&ids}));
  kern::MoeListsParams kp;
  kp.ids = ids.data_as<int32_t>();
  kp.counts = counts.data_as<int32_t>();
  kp.offsets = offsets.data_as<int32_t>();
  kp.perm = perm.data_as<int32_t>();
  kp.tokens = tokens;
  kp.k = static_cast<int>(k);
  kp.n_experts = n_experts;
  MLXN_TRY(s.device().kernels().require(op, "i32"));
  return s.record(op, {ids.range()}, {counts.range(), offsets.range(), perm.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(moe_expert_lists, kp, ctx); });
}

Status moe_weighted_reduce(Session& s, const Buffer& x, const Buffer& w, const Buffer& out) {
  constexpr std::string_view op = "moe_weighted_reduce";
  MLXN_TRY(check_buffer(op, "x", s, x));
  MLXN_TRY(detail::check_float(op, "x", x));
  MLXN_TRY(check_contiguous(op, "x", x));
  if (x.rank() != 3) return invalid_argument(op, "x must be [tokens, k, dim], got ", x.shape());
  const int64_t tokens = x.shape()[0], k = x.shape()[1], dim = x.shape()[2];
  if (k < 1 || k > kern::kMoeMaxTopK)
    return invalid_argument(op, "k = ", k, " must be in [1, ", kern::kMoeMaxTopK, "]");
  MLXN_TRY(check_typed(op, "w", s, w, DType::F32, tokens * k));
  MLXN_TRY(check_buffer(op, "out", s, out));
  MLXN_TRY(detail::check_float(op, "out", out));
  MLXN_TRY(check_contiguous(op, "out", out));
  if (out.numel() != tokens * dim)
    return invalid_argument(op, "out has ", out.numel(), " elements, expected ", tokens * dim);
  MLXN_TRY(check_disjoint(op, {{"out", &out}}, {&x, &w}));
  kern::MoeReduceParams kp;
  kp.x = x.data();
  kp.w = w.data_as<float>();
  kp.out = out.data();
  kp.tx = x.dtype();
  kp.tout = out.dtype();
  kp.tokens = tokens;
  kp.dim = dim;
  kp.k = static_cast<int>(k);
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tx, kp.tout})));
  if (tokens == 0 || dim == 0) return Status::ok();
  return s.record(op, {x.range(), w.range()}, {out.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(moe_weighted_reduce, kp, ctx); });
}

Status moe_reduce_norm_add(Session& s, const Buffer& x, const Buffer& w, const Buffer& norm_w, const Buffer& residual,
                           const Buffer& out, const RmsNormParams& p) {
  constexpr std::string_view op = "moe_reduce_norm_add";
  MLXN_TRY(check_buffer(op, "x", s, x));
  if (x.rank() != 3) return invalid_argument(op, "x must be [tokens, k, dim], got ", x.shape());
  const int64_t tokens = x.shape()[0], dim = x.shape()[2];
  MLXN_TRY(check_buffer(op, "residual", s, residual));
  MLXN_TRY(check_buffer(op, "out", s, out));
  const Shape want{tokens, dim};
  if (residual.shape() != want)
    return invalid_argument(op, "residual has shape ", residual.shape(), ", expected ", want);
  if (out.shape() != want) return invalid_argument(op, "out has shape ", out.shape(), ", expected ", want);
  if (norm_w.valid() && norm_w.numel() != dim)
    return invalid_argument(op, "norm_w has ", norm_w.numel(), " elements, expected ", dim);
  MLXN_TRY(check_disjoint(op, {{"out", &out}}, {&x, &w}));
  if (tokens == 0 || dim == 0) return Status::ok();
  // The sum in the residual's dtype (the norm-and-add kernel takes r and x of one dtype).
  MLXN_TRY(detail::check_float(op, "residual", residual));
  MLXN_ASSIGN_OR_RETURN(Buffer raw, s.scratch(static_cast<size_t>(tokens * dim) * dtype_size(residual.dtype())));
  MLXN_ASSIGN_OR_RETURN(Buffer sum, raw.view(0, residual.dtype(), want));
  // The scratch is shared by the session's ops: in explicit hazard mode, barriers around this op's use of it.
  const MemRange sr = sum.range();
  s.barrier_between({}, {sr});
  MLXN_TRY(moe_weighted_reduce(s, x, w, sum));
  s.barrier_between({sr}, {});
  return rms_norm_add(s, sum, norm_w, residual, out, p);
}

}  // namespace mlxn::ops
