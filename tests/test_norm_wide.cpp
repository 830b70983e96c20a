// add_rms_norm with an f16 / bf16 residual on an f32 stream (CPU backend) against the reference in
// norm_wide_cases.h, the same-dtype result of add() then rms_norm(), and the error paths of the mixed case.
#include "mlxn/ops/elementwise.h"
#include "norm_wide_cases.h"

namespace mlxn {
namespace {

TEST(NormWide, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const float eps = 1e-5f;
  for (const auto& c : test::wide_cases()) {
    SCOPED_TRACE(test::describe(c));
    auto run = test::run_wide(Device::cpu(), c, seed, eps);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    std::vector<float> h, y;
    test::wide_reference(c, run, eps, h, y);
    EXPECT_EQ(run.h, h);  // f32 + (r widened exactly): one f32 rounding, the same on both sides
    // The CPU sums in double and rounds y once; the reference rounds its double to f32 first.
    EXPECT_LE(test::max_scaled_err(run.y, y, 1e-6, test::rtol_for(c.ty) / 2), 1.0);
  }
}

// The mixed add_rms_norm equals add() (f32 + f16 into f32) followed by rms_norm, as the models used before.
TEST(NormWide, EqualsAddThenRmsNorm) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const int64_t rows = 3, cols = 40;
  const auto xv = test::randn(rows * cols, seed), rv = test::randn(rows * cols, seed + 1);
  const auto wv = test::randn(cols, seed + 2, 0.1f, 1.0f);
  for (DType tr : {DType::F16, DType::BF16}) {
    auto x1 = test::make_buffer(cpu, DType::F32, {rows, cols}, xv);
    auto x2 = test::make_buffer(cpu, DType::F32, {rows, cols}, xv);
    auto r = test::make_buffer(cpu, tr, {rows, cols}, rv);
    auto w = test::make_buffer(cpu, DType::F32, {cols}, wv);
    auto y1 = cpu.alloc(DType::F16, {rows, cols}).value(), y2 = cpu.alloc(DType::F16, {rows, cols}).value();
    test::poison(y1);
    test::poison(y2);
    ASSERT_TRUE(ops::add_rms_norm(s, x1, r, w, x1, y1).is_ok());
    ASSERT_TRUE(ops::add(s, x2, r, x2).is_ok());
    ASSERT_TRUE(ops::rms_norm(s, x2, w, y2).is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    EXPECT_EQ(test::read_f32(x1), test::read_f32(x2)) << tr;
    EXPECT_LE(test::max_scaled_err(test::read_f32(y1), test::read_f32(y2), 1e-6, test::rtol_for(DType::F16)), 1.0)
        << tr;
  }
}

TEST(NormWide, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::F32, {4, 64}).value();
  auto r = cpu.alloc(DType::F16, {4, 64}).value();
  auto y = cpu.alloc(DType::F16, {4, 64}).value();
  auto w = cpu.alloc(DType::F32, {64}).value();
  ASSERT_TRUE(x.fill_bytes(0).is_ok());
  ASSERT_TRUE(r.fill_bytes(0).is_ok());
  ASSERT_TRUE(w.fill_bytes(0).is_ok());
  // A narrower stream with a wider or other residual stays unsupported: only f32 x takes an f16 / bf16 r.
  auto x16 = cpu.alloc(DType::F16, {4, 64}).value();
  auto rb = cpu.alloc(DType::BF16, {4, 64}).value();
  Status st = ops::add_rms_norm(s, x16, rb, w, x16, y);
  EXPECT_EQ(st.code(), StatusCode::Unsupported) << st.to_string();
  EXPECT_NE(st.message().find("r has dtype bf16"), std::string::npos) << st.message();
  // h must be f32 (x's dtype): writing the sum over the f16 r is rejected.
  st = ops::add_rms_norm(s, x, r, w, r, y);
  EXPECT_FALSE(st.is_ok());
  // Shape mismatch of the f16 r names r.
  auto r_short = cpu.alloc(DType::F16, {3, 64}).value();
  st = ops::add_rms_norm(s, x, r_short, w, x, y);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  EXPECT_NE(st.message().find("r has shape"), std::string::npos) << st.message();
  // r overlapping y partially.
  auto big = cpu.alloc(DType::F16, {5, 64}).value();
  auto r_view = big.view(0, DType::F16, {4, 64}).value();
  auto y_view = big.view(64 * 2, DType::F16, {4, 64}).value();
  EXPECT_FALSE(ops::add_rms_norm(s, x, r_view, w, x, y_view).is_ok());
  // rms_norm_add keeps one dtype for r.
  EXPECT_EQ(ops::rms_norm_add(s, x, w, r, x).code(), StatusCode::Unsupported);
  // The valid call.
  EXPECT_TRUE(ops::add_rms_norm(s, x, r, w, x, y).is_ok());
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
