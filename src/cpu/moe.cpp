// MoE routing references: scores and weights in double from the f32 logits, selection by repeated argmax (ties to
// the lower expert id), counting-sort expert lists.
#include "kernels/moe.h"

#include <cmath>
#include <vector>

#include "cpu/common.h"

namespace mlxn::cpu {

Status moe_route(const kern::MoeRouteParams& p, const ExecContext&) {
  const int e = p.n_experts;
  parallel_for(p.tokens, 64, [&](int64_t t) {
    std::vector<double> x(static_cast<size_t>(e)), s(static_cast<size_t>(e)), sel(static_cast<size_t>(e));
    double mx = -INFINITY;
    for (int i = 0; i < e; ++i) {
      x[static_cast<size_t>(i)] = load_f32(p.logits, p.tl, t * e + i);
      mx = std::max(mx, x[static_cast<size_t>(i)]);
    }
    double z = 0;
    for (int i = 0; i < e; ++i) z += std::exp(x[static_cast<size_t>(i)] - mx);
    for (int i = 0; i < e; ++i) {
      const double xi = x[static_cast<size_t>(i)];
      const double si = p.sigmoid ? 1.0 / (1.0 + std::exp(-xi)) : std::exp(xi - mx) / z;
      s[static_cast<size_t>(i)] = si;
      sel[static_cast<size_t>(i)] = (p.softmax_after_topk ? xi : si) + (p.bias ? p.bias[i] : 0.0);
    }
    std::vector<int> ids;
    std::vector<bool> taken(static_cast<size_t>(e), false);
    for (int j = 0; j < p.k; ++j) {
      int best = -1;
      for (int i = 0; i < e; ++i)
        if (!taken[static_cast<size_t>(i)] &&
            (best < 0 || sel[static_cast<size_t>(i)] > sel[static_cast<size_t>(best)]))
          best = i;
      taken[static_cast<size_t>(best)] = true;
      ids.push_back(best);
    }
    std::vector<double> w(static_cast<size_t>(p.k));
    if (p.softmax_after_topk) {
      double m2 = -INFINITY, z2 = 0;
      for (int id : ids) m2 = std::max(m2, x[static_cast<size_t>(id)]);
      for (int id : ids) z2 += std::exp(x[static_cast<size_t>(id)] - m2);
      for (int j = 0; j < p.k; ++j)
        w[static_cast<size_t>(j)] = std::exp(x[static_cast<size_t>(ids[static_cast<size_t>(j)])] - m2) / z2;
    } else {
      double sum = 0;
      for (int j = 0; j < p.k; ++j)
        sum += w[static_cast<size_t>(j)] = s[static_cast<size_t>(ids[static_cast<size_t>(j)])];
      if (p.renormalize && sum > 0)
        for (auto& v : w) v /= sum;
    }
    for (int j = 0; j < p.k; ++j) {
      const int id = ids[static_cast<size_t>(j)];
      double v = w[static_cast<size_t>(j)] * p.routed_scale;
      if (p.expert_scale) v *= p.expert_scale[id];
      p.ids[t * p.k + j] = id;
      p.weights[t * p.k + j] = static_cast<float>(v);
    }
  });
  return Status::ok();
}

Status moe_expert_lists(const kern::MoeListsParams& p, const ExecContext&) {
  const int64_t n = p.tokens * p.k;
  for (int e = 0; e < p.n_experts; ++e) p.counts[e] = 0;
  for (int64_t i = 0; i < n; ++i)
    if (p.ids[i] >= 0 && p.ids[i] < p.n_experts) ++p.counts[p.ids[i]];
  p.offsets[0] = 0;
  for (int e = 0; e < p.n_experts; ++e) p.offsets[e + 1] = p.offsets[e] + p.counts[e];
  std::vector<int32_t> cursor(p.offsets, p.offsets + p.n_experts);
  for (int64_t i = 0; i < n; ++i) p.perm[i] = -1;
  for (int64_t i = 0; i < n; ++i)
    if (p.ids[i] >= 0 && p.ids[i] < p.n_experts)
      p.perm[cursor[static_cast<size_t>(p.ids[i])]++] = static_cast<int32_t>(i);
  return Status::ok();
}

Status moe_weighted_reduce(const kern::MoeReduceParams& p, const ExecContext&) {
  parallel_for(p.tokens, 4, [&](int64_t t) {
    for (int64_t d = 0; d < p.dim; ++d) {
      double acc = 0;
      for (int j = 0; j < p.k; ++j)
        acc += static_cast<double>(p.w[t * p.k + j]) * load_f32(p.x, p.tx, (t * p.k + j) * p.dim + d);
      store_f32(p.out, p.tout, t * p.dim + d, static_cast<float>(acc));
    }
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
