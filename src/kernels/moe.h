// Plain parameter structs of the MoE routing kernels, and the backend entry points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

inline constexpr int kMoeMaxExperts = 512;
inline constexpr int kMoeMaxTopK = 32;

// Router logits [tokens, n_experts] -> ids [tokens, k] (int32) + weights [tokens, k] (f32); see
// include/mlxn/ops/moe.h.
struct MoeRouteParams {
  const void* logits = nullptr;
  DType tl = DType::F32;
  const float* bias = nullptr;          // [n_experts], selection only; may be null
  const float* expert_scale = nullptr;  // [n_experts]; may be null
  int32_t* ids = nullptr;
  float* weights = nullptr;
  int64_t tokens = 0;
  int n_experts = 0, k = 1;
  bool sigmoid = false;             // scoring: sigmoid instead of softmax
  bool softmax_after_topk = false;  // select on logits, softmax over the k selected
  bool renormalize = false;
  float routed_scale = 1.0f;
};

// Per-expert lists of the (token, slot) pairs of ids [tokens, k]: counts[E], offsets[E + 1] (exclusive scan of
// counts), perm[tokens * k] (flat t * k + j, grouped by expert, ascending within an expert; -1 past offsets[E]).
struct MoeListsParams {
  const int32_t* ids = nullptr;
  int32_t* counts = nullptr;
  int32_t* offsets = nullptr;
  int32_t* perm = nullptr;
  int64_t tokens = 0;
  int k = 1, n_experts = 0;
};

// out[t, :] = sum_j w[t, j] * x[t, j, :]; x [tokens, k, dim], w [tokens, k] f32, out [tokens, dim].
struct MoeReduceParams {
  const void* x = nullptr;
  const float* w = nullptr;
  void* out = nullptr;
  DType tx = DType::F32, tout = DType::F32;
  int64_t tokens = 0, dim = 0;
  int k = 1;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status moe_route(const kern::MoeRouteParams& p, const ExecContext& ctx);
Status moe_expert_lists(const kern::MoeListsParams& p, const ExecContext& ctx);
Status moe_weighted_reduce(const kern::MoeReduceParams& p, const ExecContext& ctx);
}  // namespace mlxn::cpu
namespace mlxn::cuda {
Status moe_route(const kern::MoeRouteParams& p, const ExecContext& ctx);
Status moe_expert_lists(const kern::MoeListsParams& p, const ExecContext& ctx);
Status moe_weighted_reduce(const kern::MoeReduceParams& p, const ExecContext& ctx);
}  // namespace mlxn::cuda
