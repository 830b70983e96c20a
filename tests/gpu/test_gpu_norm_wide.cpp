// add_rms_norm with an f16 / bf16 residual on an f32 stream on CUDA against the CPU backend (norm_wide_cases.h), and
// the registry's keys for the mixed case agree with dispatch.
#include "norm_wide_cases.h"

namespace mlxn {
namespace {

TEST(GpuNormWide, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::wide_cases()) {
    SCOPED_TRACE(test::describe(c));
    auto cpu = test::run_wide(Device::cpu(), c, seed, 1e-5f);
    auto cuda = test::run_wide(gpu, c, seed, 1e-5f);
    ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
    ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
    EXPECT_EQ(cuda.h, cpu.h);  // one f32 add per element on both
    // f32 sum of squares against the CPU's double, then one rounding of y each: one output ulp.
    EXPECT_LE(test::max_scaled_err(cuda.y, cpu.y, 1e-5, test::rtol_for(c.ty)), 1.0);
  }
}

TEST(GpuNormWide, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  auto x = gpu.alloc(DType::F32, {2, 64}).value();
  auto w = gpu.alloc(DType::F32, {64}).value();
  ASSERT_TRUE(x.fill_bytes(0).is_ok());
  ASSERT_TRUE(w.fill_bytes(0).is_ok());
  for (DType tr : {DType::F16, DType::BF16})
    for (DType ty : test::float_dtypes()) {
      auto r = gpu.alloc(tr, {2, 64}).value();
      auto y = gpu.alloc(ty, {2, 64}).value();
      ASSERT_TRUE(r.fill_bytes(0).is_ok());
      const bool listed = gpu.kernels().supports("add_rms_norm", KernelRegistry::key({DType::F32, DType::F32, ty, tr}));
      EXPECT_TRUE(listed) << tr << " " << ty;
      Status st = ops::add_rms_norm(s, x, r, w, x, y);
      EXPECT_EQ(st.is_ok(), listed) << tr << " " << ty << ": " << st.to_string();
    }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
