// MoE routing on CUDA against the CPU backend.
#include "moe_cases.h"

namespace mlxn {
namespace {

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
        EXPECT_EQ(cuda.ids, cpu.ids);
        EXPECT_LE(test::max_scaled_err(cuda.w, cpu.w, 1e-6, 1e-5), 1.0);
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

}  // namespace
}  // namespace mlxn
