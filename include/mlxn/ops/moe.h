// Mixture-of-experts routing on the device: router logits -> (expert id, weight) per token and slot, the per-expert
// token lists an expert-routed matmul needs, and the weighted combination of the experts' outputs.
//
// moe_route, per token t with logits x[t, :] over E experts:
//   scores s = softmax(x) (MoeScoring::Softmax) or sigmoid(x) (MoeScoring::Sigmoid);
//   selection: the k experts with the largest s + bias (bias optional, used for selection only, as DeepSeek-V3's
//     e_score_correction_bias), ties to the lower expert id; listed in descending order of s + bias;
//   weights: w_j = s[e_j]; with renormalize, w_j /= sum_j w_j; then w_j *= expert_scale[e_j] (optional, a per-expert
//     scale as Gemma's router has) and w_j *= routed_scale (DeepSeek's routed_scaling_factor).
//   softmax_after_topk (softmax scoring only): select on x + bias, then w = softmax over the k selected logits. In
//     exact arithmetic this equals softmax-before-top-k with renormalize; it is the order some implementations
//     compute and differs only in rounding.
// Which models use which (Hugging Face configs): Mixtral: softmax, top-2, renormalize (HF computes softmax -> top-k
// -> divide by the sum; llama.cpp the same). Qwen2-MoE: softmax, norm_topk_prob = false (no renormalize).
// Qwen3-MoE / Qwen3-Next / OLMoE (norm_topk_prob true): softmax, renormalize. DeepSeek-V2: softmax, no renormalize,
// routed_scaling_factor. DeepSeek-V3 / Kimi-K2: sigmoid, selection bias, renormalize, routed_scaling_factor 2.5
// (its group-limited selection, n_group / topk_group, is not done here). GPT-OSS: top-k on the logits, then softmax
// over the selected (softmax_after_topk). Llama 4: top-1, sigmoid of the selected logit (sigmoid, k = 1).
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"
#include "mlxn/ops/norm.h"

namespace mlxn::ops {

enum class MoeScoring : uint8_t { Softmax, Sigmoid };

struct MoeRouteParams {
  int k = 8;  // 1 <= k <= min(E, 32)
  MoeScoring scoring = MoeScoring::Softmax;
  bool softmax_after_topk = false;
  bool renormalize = true;
  float routed_scale = 1.0f;
};

// logits [tokens, E] f32 / f16 / bf16 (E <= 512); bias, expert_scale: [E] f32 or empty Buffers; ids [tokens, k]
// int32; weights [tokens, k] f32.
Status moe_route(Session& s, const Buffer& logits, const Buffer& bias, const Buffer& expert_scale, const Buffer& ids,
                 const Buffer& weights, const MoeRouteParams& p);

// From ids [tokens, k] int32 (entries outside [0, n_experts) are dropped): counts [n_experts] int32, offsets
// [n_experts + 1] int32 (offsets[e] = sum of counts before e), perm [tokens * k] int32 listing, for each expert in
// turn, the flat slots t * k + j routed to it in ascending order (stable by token); entries past offsets[E] are -1.
// Everything stays on the device.
Status moe_expert_lists(Session& s, const Buffer& ids, int n_experts, const Buffer& counts, const Buffer& offsets,
                        const Buffer& perm);

// out[t, :] = sum_j w[t, j] * x[t, j, :]: x [tokens, k, D] f32 / f16 / bf16 (the experts' outputs per slot),
// w [tokens, k] f32, out [tokens, D] any float dtype. f32 accumulation in slot order.
Status moe_weighted_reduce(Session& s, const Buffer& x, const Buffer& w, const Buffer& out);

// The MoE block's tail with a post-FFN norm (Gemma-style sandwich norms, Llama 4 / Qwen3-MoE variants with a norm
// after the experts): out[t, :] = residual[t, :] + rms_norm(sum_j w[t, j] * x[t, j, :]) * (norm_w + weight_offset).
// The weighted sum goes to the session's scratch in the residual's dtype (rounded once, as the unfused sequence
// stores it), then one kernel does the norm and the add (rms_norm_add): two kernels in place of three (weighted
// reduce, norm, add). x, w as for moe_weighted_reduce; norm_w [D] (or an invalid Buffer: no weight);
// residual and out [tokens, D] f32 / f16 / bf16; out may be residual (updating the residual stream in place).
Status moe_reduce_norm_add(Session& s, const Buffer& x, const Buffer& w, const Buffer& norm_w, const Buffer& residual,
                           const Buffer& out, const RmsNormParams& p = {});

}  // namespace mlxn::ops
