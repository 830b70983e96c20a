// MoE routing on CUDA against the CPU backend.
#include <algorithm>
#include <cmath>

#include "moe_cases.h"

namespace mlxn {
namespace {

// Selection score of expert i of token t, in double, as the router defines it (scoring, then the selection bias).
double selection_score(const std::vector<float>& logits, const std::vector<float>* bias, int e, int64_t t, int i,
                       const ops::MoeRouteParams& p) {
  const float* l = logits.data() + t * e;
  const double x = l[i];
  double s = x;
  if (!p.softmax_after_topk) {
    if (p.scoring == ops::MoeScoring::Sigmoid) {
      s = 1.0 / (1.0 + std::exp(-x));
    } else {
      double mx = -INFINITY, z = 0;
      for (int j = 0; j < e; ++j) mx = std::max(mx, static_cast<double>(l[j]));
      for (int j = 0; j < e; ++j) z += std::exp(static_cast<double>(l[j]) - mx);
      s = std::exp(x - mx) / z;
    }
  }
  return s + (bias ? (*bias)[static_cast<size_t>(i)] : 0.0);
}

// Tokens whose selected expert sets differ between the backends are accepted only when every expert that one
// backend chose and the other did not scores within 1e-6 (relative) of the weakest expert the other chose: a
// near-tie that f32 arithmetic may order either way. Returns the tokens to leave out of the weight comparison.
std::vector<bool> check_ids(const std::vector<int32_t>& got, const std::vector<int32_t>& want,
                            const std::vector<float>& logits, const std::vector<float>* bias, int e, int k,
                            int64_t tokens, const ops::MoeRouteParams& p) {
  std::vector<bool> skip(static_cast<size_t>(tokens), false);
  for (int64_t t = 0; t < tokens; ++t) {
    const auto g0 = got.begin() + t * k, w0 = want.begin() + t * k;
    if (std::equal(g0, g0 + k, w0)) continue;
    double weakest = INFINITY;
    for (int j = 0; j < k; ++j) weakest = std::min(weakest, selection_score(logits, bias, e, t, w0[j], p));
    for (int j = 0; j < k; ++j) {
      if (std::find(w0, w0 + k, g0[j]) != w0 + k) continue;
      const double sc = selection_score(logits, bias, e, t, g0[j], p);
      EXPECT_LE(std::abs(sc - weakest), 1e-6 * std::max(1.0, std::abs(weakest)))
          << "token " << t << ": expert " << g0[j] << " chosen instead of a clearly stronger one";
    }
    skip[static_cast<size_t>(t)] = true;
  }
  return skip;
}

TEST(GpuMoeRoute, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int n = 0;
  for (const auto& c : test::route_configs()) {
    for (DType t : test::float_dtypes()) {
      for (int64_t tokens : {1, 9, 512}) {
        SCOPED_TRACE(detail::cat(c.name, " ", t, " tokens=", tokens));
        const auto logits =
            test::rounded(t, test::randn(static_cast<size_t>(tokens * c.e), seed + static_cast<uint64_t>(n++)));
        const auto bias = test::randn(static_cast<size_t>(c.e), seed + 1000, 0.1f);
        const auto scale = test::randn(static_cast<size_t>(c.e), seed + 2000, 0.2f, 1.0f);
        auto cpu = test::run_route(Device::cpu(), t, tokens, c.e, logits, c.bias ? &bias : nullptr,
                                   c.scale ? &scale : nullptr, c.p);
        auto cuda =
            test::run_route(gpu, t, tokens, c.e, logits, c.bias ? &bias : nullptr, c.scale ? &scale : nullptr, c.p);
        ASSERT_TRUE(cpu.status.is_ok() && cuda.status.is_ok()) << cuda.status.to_string();
        const auto skip = check_ids(cuda.ids, cpu.ids, logits, c.bias ? &bias : nullptr, c.e, c.k, tokens, c.p);
        std::vector<float> gw, cw;
        for (int64_t tok = 0; tok < tokens; ++tok) {
          if (skip[static_cast<size_t>(tok)]) continue;
          gw.insert(gw.end(), cuda.w.begin() + tok * c.k, cuda.w.begin() + (tok + 1) * c.k);
          cw.insert(cw.end(), cpu.w.begin() + tok * c.k, cpu.w.begin() + (tok + 1) * c.k);
        }
        EXPECT_LE(test::max_scaled_err(gw, cw, 1e-6, 1e-5), 1.0);
      }
    }
  }
}

TEST(GpuMoeExpertLists, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  std::mt19937_64 g(seed);
  for (auto [tokens, k, e] : std::vector<std::tuple<int64_t, int, int>>{
           {1, 8, 128}, {7, 2, 8}, {300, 8, 128}, {33, 4, 512}, {4096, 8, 128}, {1000, 32, 512}}) {
    SCOPED_TRACE(detail::cat(tokens, " tokens, k=", k, ", E=", e));
    std::vector<int32_t> ids(static_cast<size_t>(tokens * k));
    for (auto& v : ids)
      v = g() % 50 == 0 ? static_cast<int32_t>(e + 3)
                        : static_cast<int32_t>((g() % static_cast<uint64_t>(e)) * (g() % 2));
    auto cpu = test::run_lists(Device::cpu(), tokens, k, e, ids);
    auto cuda = test::run_lists(gpu, tokens, k, e, ids);
    ASSERT_TRUE(cpu.status.is_ok() && cuda.status.is_ok()) << cuda.status.to_string();
    EXPECT_EQ(cuda.counts, cpu.counts);
    EXPECT_EQ(cuda.offsets, cpu.offsets);
    EXPECT_EQ(cuda.perm, cpu.perm);
  }
}

TEST(GpuMoeWeightedReduce, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int n = 0;
  for (auto [tokens, k, dim] : std::vector<std::tuple<int64_t, int, int64_t>>{
           {1, 1, 1}, {3, 2, 7}, {5, 8, 4096}, {2, 4, 1000}, {64, 8, 2048}, {3, 32, 4100}}) {
    for (DType tx : test::float_dtypes()) {
      for (DType to : test::float_dtypes()) {
        SCOPED_TRACE(detail::cat(tokens, "x", k, "x", dim, " ", tx, "->", to));
        const auto x =
            test::rounded(tx, test::randn(static_cast<size_t>(tokens * k * dim), seed + static_cast<uint64_t>(n)));
        const auto w = test::randn(static_cast<size_t>(tokens * k), seed + 77 + static_cast<uint64_t>(n), 0.3f);
        const size_t off = static_cast<size_t>(n++ % 3);
        auto cpu = test::run_weighted_reduce(Device::cpu(), tx, to, tokens, k, dim, x, w, off);
        auto cuda = test::run_weighted_reduce(gpu, tx, to, tokens, k, dim, x, w, off);
        ASSERT_TRUE(cpu.status.is_ok() && cuda.status.is_ok()) << cuda.status.to_string();
        EXPECT_LE(test::max_scaled_err(cuda.val, cpu.val, 1e-5, test::rtol_for(to)), 1.0);
      }
    }
  }
}

TEST(GpuMoe, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType t : test::float_dtypes()) {
    auto l = gpu.alloc(t, {2, 16}).value();
    ASSERT_TRUE(l.fill_bytes(0).is_ok());
    auto ids = gpu.alloc(DType::I32, {2, 2}).value();
    auto w = gpu.alloc(DType::F32, {2, 2}).value();
    ops::MoeRouteParams p;
    p.k = 2;
    EXPECT_EQ(ops::moe_route(s, l, Buffer(), Buffer(), ids, w, p).is_ok(),
              gpu.kernels().supports("moe_route", KernelRegistry::key({t})));
    auto x = gpu.alloc(t, {2, 2, 16}).value();
    ASSERT_TRUE(x.fill_bytes(0).is_ok());
    for (DType to : test::float_dtypes()) {
      auto o = gpu.alloc(to, {2, 16}).value();
      EXPECT_EQ(ops::moe_weighted_reduce(s, x, w, o).is_ok(),
                gpu.kernels().supports("moe_weighted_reduce", KernelRegistry::key({t, to})));
    }
  }
  ASSERT_TRUE(s.finish().is_ok());
}

TEST(GpuMoeReduceNormAdd, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  uint64_t n = 0;
  for (auto [tokens, k, dim] :
       std::vector<std::tuple<int64_t, int, int64_t>>{{1, 1, 1}, {3, 2, 7}, {5, 8, 4096}, {64, 8, 2048}}) {
    for (DType tx : test::float_dtypes()) {
      for (DType to : test::float_dtypes()) {
        if (!gpu.kernels().supports("moe_weighted_reduce", KernelRegistry::key({tx, DType::F32}))) continue;
        SCOPED_TRACE(detail::cat(tokens, "x", k, "x", dim, " ", tx, "->", to));
        const auto x = test::rounded(tx, test::randn(static_cast<size_t>(tokens * k * dim), seed + n));
        const auto w = test::randn(static_cast<size_t>(tokens * k), seed + 77 + n, 0.3f);
        const auto r = test::rounded(to, test::randn(static_cast<size_t>(tokens * dim), seed + 99 + n));
        const auto nw = test::randn(static_cast<size_t>(dim), seed + 55 + n, 0.5f);
        ++n;
        ops::RmsNormParams p;
        p.weight_offset = n % 2 ? 1.0f : 0.0f;
        auto cpu = test::run_reduce_norm_add(Device::cpu(), tx, to, tokens, k, dim, x, w, nw, r, n % 3 == 0, p);
        auto cuda = test::run_reduce_norm_add(gpu, tx, to, tokens, k, dim, x, w, nw, r, n % 3 == 0, p);
        ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
        ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
        EXPECT_LE(test::max_scaled_err(cuda.val, cpu.val, 4 * test::rtol_for(to), 2 * test::rtol_for(to)), 1.0);
      }
    }
  }
}

}  // namespace
}  // namespace mlxn
