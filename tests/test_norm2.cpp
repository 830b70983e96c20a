// The general normalisation ops on the CPU backend against a double-precision reference computed here, closed
// forms, in-place use and the error paths.
#include "norm2_cases.h"

namespace mlxn {
namespace {

TEST(Norm2, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const float eps = 1e-5f;
  for (const auto& c : test::norm2_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    auto run = test::run_norm2(Device::cpu(), c, seed, eps);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    auto [h, y] = test::norm2_reference(c, run, eps);
    // One rounding of the output is all the CPU reference may add.
    EXPECT_LE(test::max_scaled_err(run.y, y, 1e-6, test::rtol_for(c.ty) / 2), 1.0);
    if (c.op == test::Norm2Op::AddRms) {
      EXPECT_EQ(run.h, h);  // h = x + r rounded once: exact
    }
  }
}

TEST(Norm2, ClosedForms) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = test::make_buffer(cpu, DType::F32, {2, 4}, {1, 2, 3, 4, -2, -2, -2, -2});
  auto y = cpu.alloc(DType::F32, {2, 4}).value();
  // LayerNorm of 1 2 3 4: mean 2.5, biased variance 1.25; a constant row normalises to 0 (then + b).
  auto w = test::make_buffer(cpu, DType::F32, {4}, {1, 1, 2, 2});
  auto b = test::make_buffer(cpu, DType::F32, {4}, {0, 1, 0, 1});
  test::poison(y);
  ASSERT_TRUE(ops::layer_norm(s, x, w, b, y, {1e-5f}).is_ok());
  const float k = 1.0f / std::sqrt(1.25f + 1e-5f);
  auto out = test::read_f32(y);
  const std::vector<float> expect = {-1.5f * k, -0.5f * k + 1, 2 * 0.5f * k, 2 * 1.5f * k + 1, 0, 1, 0, 1};
  for (size_t i = 0; i < expect.size(); ++i) EXPECT_NEAR(out[i], expect[i], 1e-6) << i;
  // L2: 1 2 3 4 has norm sqrt(30); max(norm, eps) keeps a zero row at zero.
  auto z = test::make_buffer(cpu, DType::F32, {2, 4}, {1, 2, 3, 4, 0, 0, 0, 0});
  ASSERT_TRUE(ops::l2_norm(s, z, y).is_ok());
  out = test::read_f32(y);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], (i + 1) / std::sqrt(30.0f), 1e-7);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(out[i], 0.0f);
  // add_rms_norm in place on the residual: r <- x + r, y = rms_norm(r) * w.
  auto r = test::make_buffer(cpu, DType::F32, {2, 4}, {2, 1, 0, -1, 0, 0, 0, 0});
  auto w1 = test::make_buffer(cpu, DType::F32, {4}, {1, 2, 3, 4});
  ops::RmsNormParams p;
  p.eps = 0.0f;
  ASSERT_TRUE(ops::add_rms_norm(s, x, r, w1, r, y, p).is_ok());
  EXPECT_EQ(test::read_f32(r), (std::vector<float>{3, 3, 3, 3, -2, -2, -2, -2}));
  EXPECT_EQ(test::read_f32(y), (std::vector<float>{1, 2, 3, 4, -1, -2, -3, -4}));
  // rms_norm_add in place on the residual with Gemma's (1 + w): y = r + x / rms(x) * (1 + w).
  auto r2 = test::make_buffer(cpu, DType::F32, {2, 4}, {10, 10, 10, 10, 0, 0, 0, 0});
  auto ones = test::make_buffer(cpu, DType::F32, {2, 4}, {3, 3, 3, 3, -2, -2, -2, -2});
  auto w0 = test::make_buffer(cpu, DType::F32, {4}, {0, 1, 2, 3});
  p.weight_offset = 1.0f;
  ASSERT_TRUE(ops::rms_norm_add(s, ones, w0, r2, r2, p).is_ok());
  EXPECT_EQ(test::read_f32(r2), (std::vector<float>{11, 12, 13, 14, -1, -2, -3, -4}));
  // group_rms_norm: two groups of 2 per row, each normalised on its own with the shared 2-element weight.
  auto g = test::make_buffer(cpu, DType::F32, {1, 4}, {3, 3, -5, -5});
  auto wg = test::make_buffer(cpu, DType::F32, {2}, {1, 2});
  auto yg = cpu.alloc(DType::F32, {1, 4}).value();
  p.weight_offset = 0.0f;
  ASSERT_TRUE(ops::group_rms_norm(s, g, wg, yg, 2, p).is_ok());
  EXPECT_EQ(test::read_f32(yg), (std::vector<float>{1, 2, -1, -2}));
}

TEST(Norm2, FusedEqualsUnfused) {
  // add_rms_norm == add then rms_norm, bit for bit (the norm sees h as stored), in bf16.
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const int64_t rows = 5, cols = 96;
  auto x = test::make_buffer(cpu, DType::BF16, {rows, cols}, test::randn(rows * cols, seed));
  auto r = test::make_buffer(cpu, DType::BF16, {rows, cols}, test::randn(rows * cols, seed + 1));
  auto w = test::make_buffer(cpu, DType::BF16, {cols}, test::randn(cols, seed + 2));
  auto h1 = cpu.alloc(DType::BF16, {rows, cols}).value(), h2 = cpu.alloc(DType::BF16, {rows, cols}).value();
  auto y1 = cpu.alloc(DType::BF16, {rows, cols}).value(), y2 = cpu.alloc(DType::BF16, {rows, cols}).value();
  ASSERT_TRUE(ops::add_rms_norm(s, x, r, w, h1, y1).is_ok());
  ASSERT_TRUE(ops::add(s, x, r, h2).is_ok());
  ASSERT_TRUE(ops::rms_norm(s, h2, w, y2).is_ok());
  EXPECT_EQ(test::read_f32(h1), test::read_f32(h2));
  EXPECT_EQ(test::read_f32(y1), test::read_f32(y2));
}

TEST(Norm2, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::BF16, {4, 256}).value();
  auto r = cpu.alloc(DType::BF16, {4, 256}).value();
  auto h = cpu.alloc(DType::BF16, {4, 256}).value();
  auto y = cpu.alloc(DType::BF16, {4, 256}).value();
  auto w = cpu.alloc(DType::BF16, {256}).value();
  Status st = ops::add_rms_norm(s, x, Buffer(), w, h, y);
  EXPECT_EQ(st.message(), "[add_rms_norm] r is an empty buffer");
  auto r32 = cpu.alloc(DType::F32, {4, 256}).value();
  st = ops::add_rms_norm(s, x, r32, w, h, y);
  EXPECT_EQ(st.code(), StatusCode::Unsupported);
  EXPECT_NE(st.message().find("r has dtype f32"), std::string::npos) << st.message();
  auto r_short = cpu.alloc(DType::BF16, {3, 256}).value();
  EXPECT_NE(ops::rms_norm_add(s, x, w, r_short, y).message().find("r has shape"), std::string::npos);
  EXPECT_NE(ops::add_rms_norm(s, x, r, w, h, h).message().find("h and y overlap"), std::string::npos);
  auto w_short = cpu.alloc(DType::BF16, {255}).value();
  EXPECT_EQ(ops::layer_norm(s, x, w_short, Buffer(), y).message(), "[layer_norm] w has 255 elements, expected 256");
  auto b16 = cpu.alloc(DType::F16, {256}).value();
  EXPECT_EQ(ops::layer_norm(s, x, Buffer(), b16, y).code(), StatusCode::Unsupported);
  auto w32 = cpu.alloc(DType::F32, {256}).value();
  EXPECT_EQ(ops::layer_norm(s, x, w32, w, y).code(), StatusCode::Unsupported);  // w and b dtypes differ
  EXPECT_NE(ops::group_rms_norm(s, x, w, y, 100).message().find("not a multiple of group_size"), std::string::npos);
  EXPECT_EQ(ops::group_rms_norm(s, x, w, y, 0).code(), StatusCode::InvalidArgument);
  EXPECT_NE(ops::group_rms_norm(s, x, w, y, 128).message().find("w has 256 elements, expected 128"), std::string::npos);
  auto xi = cpu.alloc(DType::I32, {4, 256}).value();
  EXPECT_EQ(ops::l2_norm(s, xi, y).code(), StatusCode::Unsupported);
  ops::L2NormParams lp;
  lp.eps = -1.0f;
  EXPECT_EQ(ops::l2_norm(s, x, y, lp).code(), StatusCode::InvalidArgument);
  // A weight that overlaps the output, an output overlapping an input partially.
  auto big = cpu.alloc(DType::BF16, {5, 256}).value();
  auto a = big.slice(0, 0, 4).value(), b = big.slice(0, 1, 4).value();
  EXPECT_NE(ops::l2_norm(s, a, b).message().find("overlap"), std::string::npos);
  auto wy = big.view(0, DType::BF16, {256}).value();
  EXPECT_NE(ops::layer_norm(s, x, wy, Buffer(), a).message().find("w and y overlap"), std::string::npos);
  auto cols = x.slice(1, 0, 100).value();
  EXPECT_NE(ops::l2_norm(s, cols, cpu.alloc(DType::BF16, {4, 100}).value()).message().find("contiguous"),
            std::string::npos);
}

}  // namespace
}  // namespace mlxn
