// Dense matmul on CUDA (our decode kernel for M <= 16, cuBLASLt above) against the CPU backend.
#include "matmul_cases.h"

namespace mlxn {
namespace {

TEST(GpuMatmul, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  std::vector<test::MatmulCase> cases;
  int i = 0;
  for (int64_t M : {1, 2, 3, 5, 8, 13, 16, 17, 64})
    for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{1, 8}, {7, 250}, {257, 512}, {64, 4096}}) {
      for (auto [tx, tw] : std::vector<std::pair<DType, DType>>{{DType::BF16, DType::BF16},
                                                               {DType::F16, DType::F16},
                                                               {DType::F32, DType::F32},
                                                               {DType::F32, DType::BF16},
                                                               {DType::BF16, DType::F32}})
        cases.push_back({M, N, K, tx, tw, (i++ % 3 == 1) ? 8 : 0});
    }
  for (const auto& c : cases) {
    SCOPED_TRACE(test::describe(c));
    auto cpu = test::run_matmul(Device::cpu(), c, seed);
    auto cuda = test::run_matmul(gpu, c, seed);
    ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
    ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
    const auto ref = test::matmul_reference(cpu, c);
    // f32 accumulation over K against float64, plus one rounding of the output.
    const double bound = c.tx == DType::F32 ? 2e-5 : 6e-3;
    EXPECT_LE(test::rel_l2(cuda.y, ref), bound);
  }
}

}  // namespace
}  // namespace mlxn
