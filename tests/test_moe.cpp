// MoE routing on the CPU backend against references written here: selection by a full sort, weights by the
// formulas of include/mlxn/ops/moe.h, expert lists by a per-expert scan.
#include <numeric>

#include "moe_cases.h"

namespace mlxn {
namespace {

TEST(MoeRoute, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int n = 0;
  for (const auto& c : test::route_configs()) {
    for (DType t : test::float_dtypes()) {
      SCOPED_TRACE(detail::cat(c.name, " ", t));
      const int64_t tokens = 37;
      const auto logits =
          test::rounded(t, test::randn(static_cast<size_t>(tokens * c.e), seed + static_cast<uint64_t>(n++)));
      const auto bias = test::randn(static_cast<size_t>(c.e), seed + 1000, 0.1f);
      const auto scale = test::randn(static_cast<size_t>(c.e), seed + 2000, 0.2f, 1.0f);
      auto run = test::run_route(Device::cpu(), t, tokens, c.e, logits, c.bias ? &bias : nullptr,
                                 c.scale ? &scale : nullptr, c.p);
      ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
      for (int64_t tk = 0; tk < tokens; ++tk) {
        const float* x = logits.data() + tk * c.e;
        const double mx = *std::max_element(x, x + c.e);
        double z = 0;
        for (int i = 0; i < c.e; ++i) z += std::exp(x[i] - mx);
        std::vector<double> score(static_cast<size_t>(c.e)), key(static_cast<size_t>(c.e));
        for (int i = 0; i < c.e; ++i) {
          score[static_cast<size_t>(i)] = c.p.scoring == ops::MoeScoring::Sigmoid
                                              ? 1 / (1 + std::exp(-static_cast<double>(x[i])))
                                              : std::exp(x[i] - mx) / z;
          key[static_cast<size_t>(i)] = (c.p.softmax_after_topk ? x[i] : score[static_cast<size_t>(i)]) +
                                        (c.bias ? bias[static_cast<size_t>(i)] : 0.0);
        }
        std::vector<int> order(static_cast<size_t>(c.e));
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int a, int b) {
          return key[static_cast<size_t>(a)] != key[static_cast<size_t>(b)]
                     ? key[static_cast<size_t>(a)] > key[static_cast<size_t>(b)]
                     : a < b;
        });
        double sum = 0, sum_exp = 0;
        for (int j = 0; j < c.k; ++j) {
          sum += score[static_cast<size_t>(order[static_cast<size_t>(j)])];
          sum_exp += std::exp(x[order[static_cast<size_t>(j)]] - mx);
        }
        for (int j = 0; j < c.k; ++j) {
          const int id = order[static_cast<size_t>(j)];
          double w = c.p.softmax_after_topk ? std::exp(x[id] - mx) / sum_exp
                                            : score[static_cast<size_t>(id)] / (c.p.renormalize ? sum : 1.0);
          w *= c.p.routed_scale * (c.scale ? scale[static_cast<size_t>(id)] : 1.0);
          ASSERT_EQ(run.ids[static_cast<size_t>(tk * c.k + j)], id) << "token " << tk << " slot " << j;
          EXPECT_NEAR(run.w[static_cast<size_t>(tk * c.k + j)], w, 1e-6 * std::max(1.0, std::abs(w)));
        }
      }
    }
  }
}

TEST(MoeRoute, TiesGoToTheLowerExpert) {
  ops::MoeRouteParams p;
  p.k = 3;
  auto run = test::run_route(Device::cpu(), DType::F32, 1, 6, {1, 2, 2, 0, 2, 1}, nullptr, nullptr, p);
  ASSERT_TRUE(run.status.is_ok());
  EXPECT_EQ(run.ids, (std::vector<int32_t>{1, 2, 4}));
  EXPECT_NEAR(run.w[0], 1.0 / 3, 1e-6);
}

TEST(MoeExpertLists, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  std::mt19937_64 g(seed);
  for (auto [tokens, k, e] :
       std::vector<std::tuple<int64_t, int, int>>{{1, 8, 128}, {7, 2, 8}, {300, 8, 128}, {33, 4, 512}}) {
    SCOPED_TRACE(detail::cat(tokens, " tokens, k=", k, ", E=", e));
    std::vector<int32_t> ids(static_cast<size_t>(tokens * k));
    // Mostly valid ids, a few out of range (dropped), skewed toward low experts.
    for (auto& v : ids) v = g() % 50 == 0 ? -1 : static_cast<int32_t>((g() % static_cast<uint64_t>(e)) * (g() % 2));
    auto run = test::run_lists(Device::cpu(), tokens, k, e, ids);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    size_t pos = 0;
    for (int ex = 0; ex < e; ++ex) {
      EXPECT_EQ(run.offsets[static_cast<size_t>(ex)], static_cast<int32_t>(pos));
      int32_t cnt = 0;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] != ex) continue;
        ASSERT_LT(pos, run.perm.size());
        EXPECT_EQ(run.perm[pos++], static_cast<int32_t>(i));
        ++cnt;
      }
      EXPECT_EQ(run.counts[static_cast<size_t>(ex)], cnt);
    }
    EXPECT_EQ(run.offsets[static_cast<size_t>(e)], static_cast<int32_t>(pos));
    for (; pos < run.perm.size(); ++pos) EXPECT_EQ(run.perm[pos], -1);
  }
}

TEST(MoeWeightedReduce, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  int n = 0;
  for (auto [tokens, k, dim] :
       std::vector<std::tuple<int64_t, int, int64_t>>{{1, 1, 1}, {3, 2, 7}, {5, 8, 4096}, {2, 4, 1000}}) {
    for (DType tx : test::float_dtypes()) {
      for (DType to : test::float_dtypes()) {
        SCOPED_TRACE(detail::cat(tokens, "x", k, "x", dim, " ", tx, "->", to));
        const auto x =
            test::rounded(tx, test::randn(static_cast<size_t>(tokens * k * dim), seed + static_cast<uint64_t>(n)));
        const auto w = test::randn(static_cast<size_t>(tokens * k), seed + 77 + static_cast<uint64_t>(n), 0.3f);
        auto run = test::run_weighted_reduce(Device::cpu(), tx, to, tokens, k, dim, x, w, static_cast<size_t>(n % 3));
        ++n;
        ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
        std::vector<float> ref(static_cast<size_t>(tokens * dim));
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t d = 0; d < dim; ++d) {
            double acc = 0;
            for (int j = 0; j < k; ++j)
              acc += static_cast<double>(w[static_cast<size_t>(t * k + j)]) *
                     x[static_cast<size_t>((t * k + j) * dim + d)];
            ref[static_cast<size_t>(t * dim + d)] = static_cast<float>(acc);
          }
        EXPECT_LE(test::max_scaled_err(run.val, ref, 1e-6, test::rtol_for(to) / 2), 1.0);
      }
    }
  }
}

// out = r + rms_norm(sum_j w_j x_j) * (nw + offset), in float64 from the rounded inputs.
// The weighted sum is rounded to `ts` (the residual's dtype) before the norm, as the op documents.
std::vector<float> reduce_norm_add_ref(int64_t tokens, int k, int64_t dim, const std::vector<float>& x,
                                       const std::vector<float>& w, const std::vector<float>& nw,
                                       const std::vector<float>& r, const ops::RmsNormParams& p, DType ts) {
  std::vector<float> ref(static_cast<size_t>(tokens * dim));
  std::vector<double> sum(static_cast<size_t>(dim));
  for (int64_t t = 0; t < tokens; ++t) {
    double ss = 0;
    for (int64_t d = 0; d < dim; ++d) {
      double acc = 0;
      for (int j = 0; j < k; ++j)
        acc += static_cast<double>(w[static_cast<size_t>(t * k + j)]) * x[static_cast<size_t>((t * k + j) * dim + d)];
      acc = test::round_to(ts, static_cast<float>(acc));
      sum[static_cast<size_t>(d)] = acc;
      ss += acc * acc;
    }
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(dim) + p.eps);
    for (int64_t d = 0; d < dim; ++d) {
      const double g = (nw.empty() ? 1.0 : static_cast<double>(nw[static_cast<size_t>(d)])) + p.weight_offset;
      ref[static_cast<size_t>(t * dim + d)] =
          static_cast<float>(r[static_cast<size_t>(t * dim + d)] + sum[static_cast<size_t>(d)] * inv * g);
    }
  }
  return ref;
}

TEST(MoeReduceNormAdd, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  uint64_t n = 0;
  for (auto [tokens, k, dim] :
       std::vector<std::tuple<int64_t, int, int64_t>>{{1, 1, 1}, {3, 2, 7}, {5, 8, 4096}, {2, 4, 1000}}) {
    for (DType tx : test::float_dtypes()) {
      for (DType to : test::float_dtypes()) {
        for (int variant = 0; variant < 3; ++variant) {  // weight; no weight, in place; Gemma offset
          SCOPED_TRACE(detail::cat(tokens, "x", k, "x", dim, " ", tx, "->", to, " variant ", variant));
          const auto x = test::rounded(tx, test::randn(static_cast<size_t>(tokens * k * dim), seed + n));
          const auto w = test::randn(static_cast<size_t>(tokens * k), seed + 77 + n, 0.3f);
          const auto r = test::rounded(to, test::randn(static_cast<size_t>(tokens * dim), seed + 99 + n));
          std::vector<float> nw;
          if (variant != 1) nw = test::randn(static_cast<size_t>(dim), seed + 55 + n, 0.5f);
          ops::RmsNormParams p;
          p.eps = 1e-5f;
          p.weight_offset = variant == 2 ? 1.0f : 0.0f;
          ++n;
          auto run = test::run_reduce_norm_add(Device::cpu(), tx, to, tokens, k, dim, x, w, nw, r, variant == 1, p);
          ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
          const auto ref = reduce_norm_add_ref(tokens, k, dim, x, w, nw, r, p, to);
          // The sum's rounding (reproduced in the reference up to its own f32 accumulation) and the output's.
          // Unit-scale values; the sum's rounding may differ by one ulp where f32 and float64 accumulations straddle
          // a rounding boundary, and r + term can cancel: an absolute allowance at the unit scale.
          EXPECT_LE(test::max_scaled_err(run.val, ref, 4 * test::rtol_for(to), 2 * test::rtol_for(to)), 1.0);
        }
      }
    }
  }
}

TEST(MoeReduceNormAdd, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::F32, {4, 2, 64}).value();
  auto w = cpu.alloc(DType::F32, {4, 2}).value();
  auto nw = cpu.alloc(DType::F32, {64}).value();
  auto r = cpu.alloc(DType::F32, {4, 64}).value();
  auto out = cpu.alloc(DType::F32, {4, 64}).value();
  auto bad = cpu.alloc(DType::F32, {4, 63}).value();
  EXPECT_EQ(ops::moe_reduce_norm_add(s, x, w, nw, bad, out).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(ops::moe_reduce_norm_add(s, x, w, nw, r, bad).code(), StatusCode::InvalidArgument);
  auto x2 = cpu.alloc(DType::F32, {4, 64}).value();
  EXPECT_EQ(ops::moe_reduce_norm_add(s, x2, w, nw, r, out).code(), StatusCode::InvalidArgument);
  auto w_bad = cpu.alloc(DType::F32, {4, 3}).value();
  EXPECT_EQ(ops::moe_reduce_norm_add(s, x, w_bad, nw, r, out).code(), StatusCode::InvalidArgument);
  auto nw_bad = cpu.alloc(DType::F32, {63}).value();
  EXPECT_EQ(ops::moe_reduce_norm_add(s, x, w, nw_bad, r, out).code(), StatusCode::InvalidArgument);
  // out overlapping x is refused.
  auto xo = x.view(0, DType::F32, {4, 64}).value();
  EXPECT_EQ(ops::moe_reduce_norm_add(s, x, w, nw, r, xo).code(), StatusCode::InvalidArgument);
}

TEST(Moe, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto logits = cpu.alloc(DType::F32, {4, 600}).value();
  auto ids = cpu.alloc(DType::I32, {4, 8}).value();
  auto w = cpu.alloc(DType::F32, {4, 8}).value();
  EXPECT_EQ(ops::moe_route(s, logits, Buffer(), Buffer(), ids, w, {}).code(), StatusCode::Unsupported);  // E > 512
  auto l128 = cpu.alloc(DType::F32, {4, 128}).value();
  ops::MoeRouteParams p;
  p.k = 33;
  EXPECT_EQ(ops::moe_route(s, l128, Buffer(), Buffer(), ids, w, p).code(), StatusCode::InvalidArgument);
  p = {};
  p.scoring = ops::MoeScoring::Sigmoid;
  p.softmax_after_topk = true;
  EXPECT_EQ(ops::moe_route(s, l128, Buffer(), Buffer(), ids, w, p).code(), StatusCode::InvalidArgument);
  auto bias_bad = cpu.alloc(DType::F32, {127}).value();
  EXPECT_EQ(ops::moe_route(s, l128, bias_bad, Buffer(), ids, w, {}).message(),
            "[moe_route] bias has 127 elements, expected 128");
  auto w_bad = cpu.alloc(DType::F16, {4, 8}).value();
  EXPECT_EQ(ops::moe_route(s, l128, Buffer(), Buffer(), ids, w_bad, {}).code(), StatusCode::Unsupported);
  EXPECT_TRUE(ops::moe_route(s, l128, Buffer(), Buffer(), ids, w, {}).is_ok());
  auto counts = cpu.alloc(DType::I32, {128}).value();
  auto offsets = cpu.alloc(DType::I32, {128}).value();  // one short
  auto perm = cpu.alloc(DType::I32, {32}).value();
  EXPECT_EQ(ops::moe_expert_lists(s, ids, 128, counts, offsets, perm).code(), StatusCode::InvalidArgument);
  auto offsets_ok = cpu.alloc(DType::I32, {129}).value();
  EXPECT_TRUE(ops::moe_expert_lists(s, ids, 128, counts, offsets_ok, perm).is_ok());
  auto counts_in_offsets = offsets_ok.view(4, DType::I32, {128}).value();
  EXPECT_NE(ops::moe_expert_lists(s, ids, 128, counts_in_offsets, offsets_ok, perm).message().find("overlaps"),
            std::string::npos);
  auto x = cpu.alloc(DType::BF16, {4, 8, 64}).value();
  auto out = cpu.alloc(DType::BF16, {4, 63}).value();
  EXPECT_EQ(ops::moe_weighted_reduce(s, x, w, out).code(), StatusCode::InvalidArgument);
  auto x2 = cpu.alloc(DType::BF16, {4, 64}).value();
  EXPECT_EQ(ops::moe_weighted_reduce(s, x2, w, out).code(), StatusCode::InvalidArgument);
}

}  // namespace
}  // namespace mlxn
