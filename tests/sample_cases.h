// Shared pieces of the sampling tests: a runner, an independent reference of the filtered distribution (double
// precision, written from the documented algorithm), and a chi-square goodness-of-fit p-value.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>

#include "reduce_cases.h"

namespace mlxn::test {

struct SampleRun {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  Status status;
};

// rows x vocab logits (values already representable in t); history rows x hist (empty: none).
inline SampleRun run_sample(const Device& dev, DType t, int64_t rows, int64_t vocab, const std::vector<float>& logits,
                            const std::vector<int32_t>& history, const ops::SampleParams& p, size_t offset = 0) {
  SampleRun out;
  auto s = Session::create(dev).value();
  auto lb = upload_at(dev, t, {rows, vocab}, logits, offset);
  Buffer hb;
  if (!history.empty()) hb = upload_i32(dev, {rows, static_cast<int64_t>(history.size()) / rows}, history);
  auto tok = poisoned(dev, DType::I32, {rows});
  auto lp = poisoned(dev, DType::F32, {rows});
  auto ws = workspace(dev, ops::sample_workspace_bytes(rows, vocab));
  out.status = ops::sample(s, lb, hb, tok, lp, ws, p);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.tokens = read_i32(tok);
  out.logprobs = read_f32(lp);
  return out;
}

// llama.cpp penalties applied to one row.
inline std::vector<double> ref_penalized(const float* l, int64_t vocab, const int32_t* hist, int64_t hist_len,
                                         const ops::SampleParams& p) {
  std::vector<double> v(l, l + vocab);
  std::map<int32_t, int> count;
  for (int64_t j = 0; j < hist_len; ++j)
    if (hist[j] >= 0 && hist[j] < vocab) ++count[hist[j]];
  for (auto [t, n] : count) {
    double& x = v[static_cast<size_t>(t)];
    x = x > 0 ? x / p.repetition_penalty : x * p.repetition_penalty;
    x -= n * static_cast<double>(p.frequency_penalty) + p.presence_penalty;
  }
  return v;
}

// The kept set and the draw probabilities (softmax(l / T) over the kept set) for one row of penalized logits.
inline std::vector<double> ref_distribution(const std::vector<double>& l, const ops::SampleParams& p) {
  const size_t n = l.size();
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return l[a] != l[b] ? l[a] > l[b] : a < b; });
  const double mx = l[order[0]];
  std::vector<bool> keep(n, true);
  if (p.temperature <= 0) {
    std::vector<double> d(n, 0.0);
    d[order[0]] = 1.0;
    return d;
  }
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    const double v = l[order[static_cast<size_t>(p.top_k - 1)]];
    for (size_t i = 0; i < n; ++i) keep[i] = keep[i] && l[i] >= v;
  }
  if (p.top_p < 1) {
    double z = 0;
    for (size_t i = 0; i < n; ++i)
      if (keep[i]) z += std::exp(l[i] - mx);
    double cum = 0, v = mx;
    for (size_t i : order) {
      if (!keep[i]) break;
      cum += std::exp(l[i] - mx);
      v = l[i];
      if (cum >= p.top_p * z) break;
    }
    for (size_t i = 0; i < n; ++i) keep[i] = keep[i] && l[i] >= v;
  }
  if (p.min_p > 0)
    for (size_t i = 0; i < n; ++i) keep[i] = keep[i] && l[i] >= mx + std::log(static_cast<double>(p.min_p));
  std::vector<double> d(n, 0.0);
  double z = 0;
  for (size_t i = 0; i < n; ++i)
    if (keep[i]) z += d[i] = std::exp((l[i] - mx) / p.temperature);
  for (auto& x : d) x /= z;
  return d;
}

// Upper tail of the chi-square distribution with `df` degrees of freedom at `x`: Q(df / 2, x / 2), the regularized
// upper incomplete gamma function (series below a + 1, Lentz's continued fraction above).
inline double chi2_pvalue(double x, int df) {
  const double a = df / 2.0, z = x / 2.0;
  if (z <= 0) return 1.0;
  const double lg = std::lgamma(a);
  if (z < a + 1) {
    double sum = 1.0 / a, term = sum;
    for (int n = 1; n < 1000; ++n) {
      term *= z / (a + n);
      sum += term;
      if (term < sum * 1e-15) break;
    }
    return 1.0 - sum * std::exp(-z + a * std::log(z) - lg);
  }
  double b = z + 1 - a, c = 1e300, d = 1 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (std::abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < 1e-15) break;
  }
  return std::exp(-z + a * std::log(z) - lg) * h;
}

// Counts of the drawn tokens against the expected distribution: every draw inside the support, and the p-value of
// the chi-square statistic (pooled over the support).
inline double goodness_of_fit(const std::vector<int32_t>& tokens, const std::vector<double>& dist, int* outside) {
  std::vector<double> obs(dist.size(), 0.0);
  *outside = 0;
  for (int32_t t : tokens) {
    if (t < 0 || static_cast<size_t>(t) >= dist.size() || dist[static_cast<size_t>(t)] == 0) {
      ++*outside;
      continue;
    }
    obs[static_cast<size_t>(t)] += 1;
  }
  double stat = 0;
  int support = 0;
  for (size_t i = 0; i < dist.size(); ++i) {
    if (dist[i] == 0) continue;
    ++support;
    const double e = dist[i] * static_cast<double>(tokens.size());
    stat += (obs[i] - e) * (obs[i] - e) / e;
  }
  return support <= 1 ? 1.0 : chi2_pvalue(stat, support - 1);
}

// The distributions of the goodness-of-fit tests: 10 logits, each config keeping a different subset.
inline std::vector<float> small_logits() { return {2.0f, 1.5f, 1.25f, 1.0f, 0.5f, 0.25f, 0.0f, -0.5f, -1.0f, -3.0f}; }

inline std::vector<ops::SampleParams> fit_configs() {
  std::vector<ops::SampleParams> v;
  ops::SampleParams p;
  v.push_back(p);  // plain temperature 1
  p.temperature = 0.7f;
  p.top_k = 5;
  v.push_back(p);
  p = {};
  p.temperature = 1.3f;
  p.top_p = 0.8f;
  v.push_back(p);
  p = {};
  p.min_p = 0.1f;
  v.push_back(p);
  p = {};
  p.temperature = 0.9f;
  p.top_k = 8;
  p.top_p = 0.9f;
  p.min_p = 0.05f;
  v.push_back(p);
  p = {};
  p.repetition_penalty = 1.3f;
  p.frequency_penalty = 0.2f;
  p.presence_penalty = 0.1f;
  v.push_back(p);
  return v;
}

}  // namespace mlxn::test
