// Quantized matmul on CUDA (tensor-core decode of every GGML format and MLX affine) against the float64 reference.
#include "qmatmul_cases.h"

namespace mlxn {
namespace {

TEST(GpuQMatmul, MatchesReference) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::qmatmul_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c, seed);
    auto run = test::run_qmatmul(gpu, c, q, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    // Each weight is formed in f16 by one fused multiply-add from a scale and an offset rounded to f16: 2^-11
    // relative to the weight plus 2^-12 of (|scale * code| + |offset|) <= 3 * 2^-12 of the row's largest weight;
    // f32 x is rounded to f16 (2^-11; bf16 and f16 x are exact); f32 accumulation (2^-20 slack folded into the
    // weight term); one rounding of the output.
    const double u_x = c.tx == DType::F32 ? 1.0 / 2048 : 0.0;
    EXPECT_LE(test::qmatmul_err(run, 1.0 / 2048 + 1e-6, 3.0 / 4096, u_x, test::rtol_for(c.tx)), 1.0);
  }
}

TEST(GpuQMatmul, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType tx : test::float_dtypes())
    for (DType tw : test::qmatmul_formats()) {
      auto x = gpu.alloc(tx, {1, 256}).value();
      auto w = gpu.alloc(tw, {16, 256}).value();
      auto y = gpu.alloc(tx, {1, 16}).value();
      ASSERT_TRUE(x.fill_bytes(0).is_ok());
      ASSERT_TRUE(w.fill_bytes(0).is_ok());
      const bool listed = gpu.kernels().supports("qmatmul", KernelRegistry::key({tw, tx}));
      Status st = ops::matmul(s, x, w, y);
      EXPECT_EQ(st.is_ok(), listed) << tw << " " << tx << ": " << st.to_string();
    }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
