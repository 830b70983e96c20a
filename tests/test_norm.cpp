// rms_norm on the CPU backend against a double-precision reference computed here.
#include "norm_cases.h"

namespace mlxn {
namespace {

TEST(RmsNorm, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::norm_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    auto run = test::run_rms_norm(Device::cpu(), c, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    auto ref = test::rms_norm_reference(run.x, c.weight ? &run.w : nullptr, c.rows, c.cols, 1e-6f, c.w_offset);
    // One rounding of the output is all the CPU reference may add.
    EXPECT_LE(test::max_scaled_err(run.y, ref, 1e-6, test::rtol_for(c.ty) / 2), 1.0);
  }
}

TEST(RmsNorm, ClosedForm) {
  // A row of equal values v normalises to 1 / sqrt(1 + eps / v^2), times the weight.
  auto s = Session::create(Device::cpu()).value();
  auto x = test::make_buffer(Device::cpu(), DType::F32, {2, 4}, {3, 3, 3, 3, -2, -2, -2, -2});
  auto w = test::make_buffer(Device::cpu(), DType::F32, {4}, {1, 2, 3, 4});
  auto y = Device::cpu().alloc(DType::F32, {2, 4}).value();
  test::poison(y);
  ops::RmsNormParams p;
  p.eps = 0.0f;
  ASSERT_TRUE(ops::rms_norm(s, x, w, y, p).is_ok());
  EXPECT_EQ(test::read_f32(y), (std::vector<float>{1, 2, 3, 4, -1, -2, -3, -4}));
  p.weight_offset = 1.0f;  // Gemma's (1 + w)
  ASSERT_TRUE(ops::rms_norm(s, x, w, y, p).is_ok());
  EXPECT_EQ(test::read_f32(y), (std::vector<float>{2, 3, 4, 5, -2, -3, -4, -5}));
  ASSERT_TRUE(ops::rms_norm(s, x, Buffer(), x, p).is_ok());  // in place, no weight
  EXPECT_EQ(test::read_f32(x), (std::vector<float>{1, 1, 1, 1, -1, -1, -1, -1}));
}

TEST(RmsNorm, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::BF16, {4, 4096}).value();
  auto y = cpu.alloc(DType::BF16, {4, 4096}).value();
  auto w_short = cpu.alloc(DType::BF16, {4095}).value();
  Status st = ops::rms_norm(s, x, w_short, y);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  EXPECT_EQ(st.message(), "[rms_norm] w has 4095 elements, expected 4096");
  auto y_bad = cpu.alloc(DType::BF16, {4, 4095}).value();
  EXPECT_EQ(ops::rms_norm(s, x, Buffer(), y_bad).code(), StatusCode::InvalidArgument);
  auto xi = cpu.alloc(DType::I32, {4, 4096}).value();
  st = ops::rms_norm(s, xi, Buffer(), y);
  EXPECT_EQ(st.code(), StatusCode::Unsupported);
  EXPECT_NE(st.message().find("x has dtype i32"), std::string::npos);
  auto w16 = cpu.alloc(DType::F16, {4096}).value();
  EXPECT_EQ(ops::rms_norm(s, x, w16, y).code(), StatusCode::Unsupported);  // w neither x's dtype nor f32
  EXPECT_EQ(ops::rms_norm(s, Buffer(), Buffer(), y).code(), StatusCode::InvalidArgument);
  auto cols = x.slice(1, 0, 100).value();
  EXPECT_NE(ops::rms_norm(s, cols, Buffer(), y).message().find("contiguous"), std::string::npos);
  // y overlapping x without being x.
  auto big = cpu.alloc(DType::F32, {3, 8}).value();
  auto a = big.slice(0, 0, 2).value(), b = big.slice(0, 1, 2).value();
  EXPECT_NE(ops::rms_norm(s, a, Buffer(), b).message().find("overlap"), std::string::npos);
  ops::RmsNormParams p;
  p.eps = -1.0f;
  EXPECT_EQ(ops::rms_norm(s, x, Buffer(), y, p).code(), StatusCode::InvalidArgument);
  p.eps = NAN;
  EXPECT_EQ(ops::rms_norm(s, x, Buffer(), y, p).code(), StatusCode::InvalidArgument);
}

}  // namespace
}  // namespace mlxn
