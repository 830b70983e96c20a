// Dense matmul on CUDA (our decode kernel for M <= 16, cuBLASLt above) against the CPU backend.
#include "matmul_cases.h"

namespace mlxn {
namespace {

// Our decode kernel (M <= 16) and cuBLASLt (M > 16) are separate tests: compute-sanitizer's racecheck cannot run
// cuBLASLt's kernels (it fails internally on a hardware exception inside them, with or without PDL), so
// scripts/gpu-check.sh races the first only.
void check_matmul(const Device& gpu, std::initializer_list<int64_t> ms) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  std::vector<test::MatmulCase> cases;
  int i = 0;
  for (int64_t M : ms)
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

TEST(GpuMatmul, DecodeMatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  check_matmul(gpu, {1, 2, 3, 5, 8, 13, 16});
}

TEST(GpuMatmul, GemmMatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  check_matmul(gpu, {17, 64});
}

}  // namespace
}  // namespace mlxn
