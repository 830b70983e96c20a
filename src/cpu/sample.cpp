// Sampling reference: the algorithm of include/mlxn/ops/sample.h written out literally (a full sort per row,
// probability sums in double), with the generator and the penalty / score formulas shared with CUDA.
#include "kernels/sample.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <vector>

#include "cpu/common.h"
#include "kernels/keys.h"

namespace mlxn::cpu {

Status sample(const kern::SampleParams& p, const ExecContext& ctx) {
  const uint32_t* sp = ctx.step_params;
  const float temp = p.temperature_slot >= 0 ? f32_from_bits(sp[p.temperature_slot]) : p.temperature;
  const uint32_t seed_lo = p.seed_slot >= 0 ? sp[p.seed_slot] : p.seed_lo;
  const uint32_t step = p.step_slot >= 0 ? sp[p.step_slot] : p.step;
  const int64_t vocab = p.vocab;
  auto key = [](float v) { return kern::float_key_bits(f32_bits(v)); };

  parallel_for(p.rows, 1, [&](int64_t r) {
    std::vector<float> l(static_cast<size_t>(vocab));
    for (int64_t c = 0; c < vocab; ++c) {
      const float v = load_f32(p.logits, p.tl, r * vocab + c);
      l[static_cast<size_t>(c)] = std::isnan(v) ? -INFINITY : v;
    }
    if (p.penalties()) {
      std::map<int32_t, int> counts;
      for (int64_t j = 0; j < p.hist_len; ++j) {
        const int32_t t = p.history[r * p.hist_len + j];
        if (t >= 0 && t < vocab) ++counts[t];
      }
      for (auto [t, n] : counts)
        l[static_cast<size_t>(t)] = kern::apply_penalty(l[static_cast<size_t>(t)], n, p.repetition_penalty,
                                                        p.frequency_penalty, p.presence_penalty);
    }
    int64_t best = 0;
    for (int64_t c = 1; c < vocab; ++c)
      if (key(l[static_cast<size_t>(c)]) > key(l[static_cast<size_t>(best)])) best = c;
    const float m = l[static_cast<size_t>(best)];
    double z = 0;
    for (float v : l) z += std::exp(static_cast<double>(v) - m);

    int64_t token = best;
    if (temp > 0.0f && m > -INFINITY) {
      std::vector<int32_t> order(static_cast<size_t>(vocab));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return key(l[static_cast<size_t>(a)]) > key(l[static_cast<size_t>(b)]);
      });
      uint32_t thresh = 0;  // keep tokens whose key is >= thresh
      if (p.top_k > 0 && p.top_k < vocab) thresh = key(l[static_cast<size_t>(order[static_cast<size_t>(p.top_k - 1)])]);
      if (p.top_p < 1.0f) {
        double zk = 0;
        for (float v : l)
          if (key(v) >= thresh) zk += std::exp(static_cast<double>(v) - m);
        const double target = static_cast<double>(p.top_p) * zk;
        double cum = 0;
        for (int32_t c : order) {
          const float v = l[static_cast<size_t>(c)];
          if (key(v) < thresh) break;
          cum += std::exp(static_cast<double>(v) - m);
          if (cum >= target) {
            thresh = std::max(thresh, key(v));
            break;
          }
        }
      }
      if (p.min_p > 0.0f) thresh = std::max(thresh, key(m + logf(p.min_p)));
      const float inv_t = 1.0f / temp;
      uint32_t best_score = 0;
      token = -1;
      for (int64_t c = 0; c < vocab; ++c) {
        const float v = l[static_cast<size_t>(c)];
        if (key(v) < thresh) continue;
        const float u =
            kern::sample_uniform(seed_lo, p.seed_hi, step, static_cast<uint32_t>(r), static_cast<uint32_t>(c));
        const uint32_t sk = key(kern::gumbel_score(v, inv_t, u));
        if (token < 0 || sk > best_score) best_score = sk, token = c;
      }
    }
    p.tokens[r] = static_cast<int32_t>(token);
    if (p.logprobs)
      p.logprobs[r] = m > -INFINITY ? static_cast<float>(l[static_cast<size_t>(token)] - m - std::log(z)) : NAN;
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
