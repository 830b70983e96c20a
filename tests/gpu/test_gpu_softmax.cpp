// softmax and log_softmax on CUDA against the CPU backend: rows in registers, rows split over clusters, the
// two-pass kernel, masks of every dtype with -inf, fully masked rows, misaligned views.
#include "softmax_cases.h"

namespace mlxn {
namespace {

TEST(GpuSoftmax, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::softmax_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    auto cpu = test::run_softmax(Device::cpu(), c, seed);
    auto cuda = test::run_softmax(gpu, c, seed);
    ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
    ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
    // __expf (ex2.approx) and f32 sums over up to 300000 terms: 4e-5 relative in f32 (log outputs: absolute, in
    // units of the log), one rounding in 16-bit outputs.
    const double rtol = c.ty == DType::F32 ? 4e-5 : test::rtol_for(c.ty);
    const double atol = c.log ? 1e-4 : 2 * test::atol_for(c.ty);
    EXPECT_LE(test::softmax_err(cuda.y, cpu.y, atol, rtol), 1.0);
  }
}

TEST(GpuSoftmax, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType tx : test::float_dtypes())
    for (DType ty : test::float_dtypes()) {
      auto x = gpu.alloc(tx, {2, 64}).value();
      auto y = gpu.alloc(ty, {2, 64}).value();
      ASSERT_TRUE(x.fill_bytes(0).is_ok());
      const bool listed = gpu.kernels().supports("softmax", KernelRegistry::key({tx, ty}));
      EXPECT_TRUE(listed);
      EXPECT_EQ(gpu.kernels().supports("log_softmax", KernelRegistry::key({tx, ty})), listed);
      Status st = ops::softmax(s, x, y);
      EXPECT_EQ(st.is_ok(), listed) << tx << " " << ty << ": " << st.to_string();
    }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
