// The general normalisation ops on CUDA against the CPU backend: every op, dtype mix, odd widths, misaligned views,
// rows past the register-resident limit, small head groups.
#include "norm2_cases.h"

namespace mlxn {
namespace {

TEST(GpuNorm2, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::norm2_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    auto cpu = test::run_norm2(Device::cpu(), c, seed, 1e-5f);
    auto cuda = test::run_norm2(gpu, c, seed, 1e-5f);
    ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
    ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
    // f32 accumulation against the double reference, then one rounding each: one output ulp (rms_norm_add's
    // outputs can cancel to near zero: an absolute floor at the residual's scale).
    // layer_norm in f32: the centring, the variance and the affine map each round in f32 (measured up to 1.2e-5).
    const double atol = c.op == test::Norm2Op::RmsAdd ? 4 * test::rtol_for(c.ty) : 1e-5;
    const double rtol = c.op == test::Norm2Op::Layer && c.ty == DType::F32 ? 4e-5 : test::rtol_for(c.ty);
    if (c.op == test::Norm2Op::Layer && c.bias) {
      // The bias can cancel x_hat * w: the error follows |x_hat w| + |b|, not |y| (a seed with y near 0 measured
      // 1.18x the |y|-relative bound).
      const size_t wn = cpu.b.size();
      double worst = 0;
      for (size_t i = 0; i < cpu.y.size(); ++i) {
        const double b = cpu.b[i % wn], scale = std::abs(cpu.y[i] - b) + std::abs(b);
        if (!std::isfinite(cuda.y[i])) worst = INFINITY;
        worst = std::max(worst, std::abs(static_cast<double>(cuda.y[i]) - cpu.y[i]) / (atol + rtol * scale));
      }
      EXPECT_LE(worst, 1.0);
    } else {
      EXPECT_LE(test::max_scaled_err(cuda.y, cpu.y, atol, rtol), 1.0);
    }
    if (c.op == test::Norm2Op::AddRms) {
      EXPECT_EQ(cuda.h, cpu.h);
    }
  }
}

TEST(GpuNorm2, InPlaceResidual) {
  // add_rms_norm writing h over r, and rms_norm_add writing y over r, at a vectorized and an odd width.
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (int64_t cols : {4096, 4097}) {
    SCOPED_TRACE(cols);
    const int64_t rows = 3, n = rows * cols;
    auto xv = test::rounded(DType::BF16, test::randn(n, seed));
    auto rv = test::rounded(DType::BF16, test::randn(n, seed + 1));
    auto wv = test::rounded(DType::BF16, test::randn(cols, seed + 2));
    std::vector<std::vector<float>> got;
    for (const Device& dev : {Device::cpu(), gpu}) {
      auto s = Session::create(dev).value();
      auto x = test::make_buffer(dev, DType::BF16, {rows, cols}, xv);
      auto r = test::make_buffer(dev, DType::BF16, {rows, cols}, rv);
      auto w = test::make_buffer(dev, DType::BF16, {cols}, wv);
      auto y = dev.alloc(DType::BF16, {rows, cols}).value();
      test::poison(y);
      ASSERT_TRUE(ops::add_rms_norm(s, x, r, w, r, y).is_ok());
      ASSERT_TRUE(ops::rms_norm_add(s, x, w, r, r).is_ok());
      ASSERT_TRUE(s.finish().is_ok());
      got.push_back(test::read_f32(r));
      got.push_back(test::read_f32(y));
    }
    EXPECT_LE(test::max_scaled_err(got[2], got[0], 0.05, 0.02), 1.0);
    EXPECT_LE(test::max_scaled_err(got[3], got[1], 1e-5, 0.016), 1.0);
  }
}

TEST(GpuNorm2, RegistryAgreesWithDispatch) {
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
        const bool listed = gpu.kernels().supports("layer_norm", KernelRegistry::key({tx, tw, ty}));
        Status st = ops::layer_norm(s, x, w, Buffer(), y);
        EXPECT_EQ(st.is_ok(), listed) << tx << " " << tw << " " << ty << ": " << st.to_string();
        for (const char* op : {"add_rms_norm", "rms_norm_add", "group_rms_norm"})
          EXPECT_EQ(gpu.kernels().supports(op, KernelRegistry::key({tx, tw, ty})), listed) << op;
        if (tw == tx) {
          EXPECT_TRUE(gpu.kernels().supports("l2_norm", KernelRegistry::key({tx, ty})));
          EXPECT_TRUE(ops::l2_norm(s, x, y).is_ok());
        }
      }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
