// Token sampling on the device: one token id per row of logits, reproducible from (seed, step, row).
//
// The algorithm, identical on every backend (the CPU backend is the reference):
//  1. Penalties (llama.cpp's llama_sampler_penalties): for every token id t occurring c > 0 times in the row's
//     history, l[t] = l[t] > 0 ? l[t] / repetition_penalty : l[t] * repetition_penalty, then
//     l[t] -= c * frequency_penalty + presence_penalty. History entries outside [0, vocab) are padding. NaN logits
//     count as -inf. These penalized logits l are what every later step sees.
//  2. Greedy: temperature <= 0 (or NaN) returns the lowest index of max(l); the filters below do not matter.
//  3. Filters, applied in llama.cpp's default chain order: top-k, then top-p, then min-p, then temperature.
//     Each filter keeps the tokens whose logit is >= a threshold, so a token tied with the last one kept is kept too
//     (Hugging Face's TopKLogitsWarper convention):
//       top-k (0 < top_k < vocab): the top_k-th largest logit;
//       top-p (top_p < 1): with probabilities p = softmax(l) over the tokens top-k kept (temperature 1), the
//         logit of the first token, in descending order, at which the cumulative probability reaches top_p;
//       min-p (min_p > 0): max(l) + log(min_p) (p >= min_p * p_max).
//  4. Temperature and the draw: token = argmax over the kept tokens of l / T + G, G = -log(-log(u)) with u the
//     Philox4x32-10 uniform of (seed, step, row, token) (kern::sample_uniform): the Gumbel-max trick draws exactly
//     from softmax(l / T) restricted to the kept tokens, with one independent uniform per token, so no scan over a
//     CDF is needed and the same (seed, step) always gives the same token on one backend. The CPU and CUDA paths use
//     the same generator and formulas; they agree on the token unless rounding moves a filter boundary or a near
//     tie (always for greedy and for a filtered set of one token).
//  The optional log-probability is log softmax(l) at the token over the full vocabulary (temperature 1, after
//  penalties, before the filters): the model's log-probability of the chosen token.
//
// seed, step and temperature can come from step-parameter slots, so a captured decode graph draws a fresh token on
// every replay after Session::set_step_u32(step_slot, step) with no re-capture.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

struct SampleParams {
  float temperature = 1.0f;         // <= 0: greedy
  int temperature_slot = -1;        // >= 0: read the temperature (f32) from this step-parameter slot at run time
  int top_k = 0;                    // 0 (or >= vocab): off
  float top_p = 1.0f;               // in (0, 1]; 1: off
  float min_p = 0.0f;               // in [0, 1]; 0: off
  float repetition_penalty = 1.0f;  // > 0; 1: off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  int seed_slot = -1;  // >= 0: the seed's low 32 bits come from this slot (u32) at run time
  uint32_t step = 0;
  int step_slot = -1;  // >= 0: the step comes from this slot (u32) at run time
};

// Workspace bytes sample needs for `rows` x `vocab` logits (the same on every backend).
size_t sample_workspace_bytes(int64_t rows, int64_t vocab);

// logits [rows, vocab] (or [vocab]) f32 / f16 / bf16, contiguous; history [rows, H] int32 or an empty Buffer (no
// penalties); tokens: `rows` int32; logprobs: `rows` f32 or an empty Buffer; workspace: at least
// sample_workspace_bytes(rows, vocab) bytes.
Status sample(Session& s, const Buffer& logits, const Buffer& history, const Buffer& tokens, const Buffer& logprobs,
              const Buffer& workspace, const SampleParams& p = {});

}  // namespace mlxn::ops
