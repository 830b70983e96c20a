// rms_norm on CUDA against the CPU backend, every dtype combination, odd widths, misaligned views.
#include "norm_cases.h"

namespace mlxn {
namespace {

TEST(GpuRmsNorm, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::norm_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    auto cpu = test::run_rms_norm(Device::cpu(), c, seed);
    auto cuda = test::run_rms_norm(gpu, c, seed);
    ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
    ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
    // f32 accumulation against the double reference, then (at most) one rounding each: allow one output ulp.
    EXPECT_LE(test::max_scaled_err(cuda.y, cpu.y, 1e-5, test::rtol_for(c.ty)), 1.0);
  }
}

TEST(GpuRmsNorm, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType tx : test::float_dtypes())
    for (DType tw : test::float_dtypes())
      for (DType ty : test::float_dtypes()) {
        auto x = gpu.alloc(tx, {2, 64}).value();
        auto w = gpu.alloc(tw, {64}).value();
        auto y = gpu.alloc(ty, {2, 64}).value();
        ASSERT_TRUE(x.fill_bytes(0).is_ok());
        ASSERT_TRUE(w.fill_bytes(0).is_ok());
        const bool listed = gpu.kernels().supports("rms_norm", KernelRegistry::key({tx, tw, ty}));
        Status st = ops::rms_norm(s, x, w, y);
        EXPECT_EQ(st.is_ok(), listed) << tx << " " << tw << " " << ty << ": " << st.to_string();
        if (!listed) {
          EXPECT_EQ(st.code(), StatusCode::Unsupported);
        }
      }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
