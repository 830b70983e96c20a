// Quantized matmul on CUDA (the int8 kernels at M <= 16, the tensor-core one above; every GGML format and MLX affine)
// against the float64 reference, each with the error bound of its arithmetic.
#include <cstdlib>

#include "qmatmul_gpu_cases.h"

namespace mlxn {
namespace {

// MLXN_TUNE_QGEMM_I8=0 sends 5 <= M <= 16 to the f16 tensor-core kernel (and its error bound).
bool i8_on() {
  const char* v = std::getenv("MLXN_TUNE_QGEMM_I8");
  return v == nullptr || std::atoi(v) != 0;
}

TEST(GpuQMatmul, MatchesReference) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::qmatmul_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c, seed);
    auto run = test::run_qmatmul(gpu, c, q, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    if (c.M <= 4 || (c.M <= 16 && i8_on())) {
      // The int8 kernels (M <= 4: src/cuda/qgemv.cuh, dp4a; 5..16: src/cuda/qgemm_i8.cuh, int8 mma): x quantized
      // per 32-element block, exact integer products.
      EXPECT_LE(test::qmatmul_err_int8(run, test::rtol_for(c.tx)), 1.0);
      continue;
    }
    // M > 4, the tensor-core kernel: each weight is formed in f16 by one fused multiply-add from a scale and an
    // offset rounded to f16: 2^-11 relative to the weight plus 2^-12 of (|scale * code| + |offset|) <= 3 * 2^-12 of
    // the row's largest weight; f32 x is rounded to f16 (2^-11; bf16 and f16 x are exact); f32 accumulation (2^-20
    // slack folded into the weight term); one rounding of the output.
    const double u_x = c.tx == DType::F32 ? 1.0 / 2048 : 0.0;
    EXPECT_LE(test::qmatmul_err(run, 1.0 / 2048 + 1e-6, 3.0 / 4096, u_x, test::rtol_for(c.tx)), 1.0);
  }
}

// A row of x gives the same result whether it is multiplied alone (M = 1) or with three others (M = 4): the slots of
// the int8 kernel must not mix. (MLXN_TUNE_QGEMV=0 runs everything above on the tensor-core kernel instead.)
TEST(GpuQMatmul, RowsIndependentOfM) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : test::qmatmul_formats()) {
    SCOPED_TRACE(detail::cat(t));
    const int64_t kb = dtype_info(t).block_elems, K = (2048 / kb + 1) * kb, N = 45;
    test::QMatmulCase c4{t, 0, 0, DType::F16, 4, N, K, DType::F32, 0};
    const auto q = test::make_qweights(c4, seed);
    auto all = test::run_qmatmul(gpu, c4, q, seed);
    ASSERT_TRUE(all.status.is_ok()) << all.status.to_string();
    test::QMatmulCase c1{t, 0, 0, DType::F16, 1, N, K, DType::F32, 0};
    auto one = test::run_qmatmul(gpu, c1, q, seed);
    ASSERT_TRUE(one.status.is_ok()) << one.status.to_string();
    // x of the 1-row case is the first row of the 4-row case (same seed, same generator order).
    ASSERT_EQ(std::vector<float>(all.x.begin(), all.x.begin() + K), one.x);
    for (int64_t n = 0; n < N; ++n) {
      const double tol = 1e-6 * (all.sum_x_wmax[static_cast<size_t>(n)] + 1e-30);
      EXPECT_NEAR(all.y[static_cast<size_t>(n)], one.y[static_cast<size_t>(n)], tol) << "n = " << n;
    }
  }
}

TEST(GpuQMatmul, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  test::expect_qmatmul_registry_agrees(gpu, 1);
}

}  // namespace
}  // namespace mlxn
