// softmax and log_softmax on the CPU backend against a double reference written here, closed forms, error paths.
#include "softmax_cases.h"

namespace mlxn {
namespace {

TEST(Softmax, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::softmax_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    auto run = test::run_softmax(Device::cpu(), c, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    auto ref = test::softmax_reference(c, run);
    EXPECT_LE(test::softmax_err(run.y, ref, test::atol_for(c.ty), test::rtol_for(c.ty) / 2), 1.0);
  }
}

TEST(Softmax, ClosedForms) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  // Equal logits share the mass; a huge logit takes it all without overflow; -inf columns get exactly 0.
  const float inf = std::numeric_limits<float>::infinity();
  auto x = test::make_buffer(cpu, DType::F32, {3, 4}, {2, 2, 2, 2, 1000, 0, 0, 0, 0, 0, 0, 0});
  auto m = test::make_buffer(cpu, DType::F32, {3, 4}, {0, 0, 0, 0, 0, 0, 0, 0, 0, -inf, 0, -inf});
  auto y = cpu.alloc(DType::F32, {3, 4}).value();
  ASSERT_TRUE(ops::softmax(s, x, m, y).is_ok());
  EXPECT_EQ(test::read_f32(y), (std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f, 1, 0, 0, 0, 0.5f, 0, 0.5f, 0}));
  ASSERT_TRUE(ops::log_softmax(s, x, m, y).is_ok());
  auto v = test::read_f32(y);
  EXPECT_FLOAT_EQ(v[0], -std::log(4.0f));
  EXPECT_EQ(v[4], 0.0f);
  EXPECT_EQ(v[5], -1000.0f);
  EXPECT_EQ(v[9], -inf);
  // Scale: softmax(x * 0.5) of (0, 2 ln 3) is (1/4, 3/4).
  auto x2 = test::make_buffer(cpu, DType::F32, {1, 2}, {0, 2 * std::log(3.0f)});
  auto y2 = cpu.alloc(DType::F32, {1, 2}).value();
  ASSERT_TRUE(ops::softmax(s, x2, Buffer(), y2, {0.5f}).is_ok());
  v = test::read_f32(y2);
  EXPECT_FLOAT_EQ(v[0], 0.25f);
  EXPECT_FLOAT_EQ(v[1], 0.75f);
  // A fully masked row is 0 (softmax) / -inf (log), never NaN; a one-row mask broadcasts over rows.
  auto mdead = test::make_buffer(cpu, DType::BF16, {1, 4}, {-inf, -inf, -inf, -inf});
  ASSERT_TRUE(ops::softmax(s, x, mdead, y).is_ok());
  EXPECT_EQ(test::read_f32(y), std::vector<float>(12, 0.0f));
  ASSERT_TRUE(ops::log_softmax(s, x, mdead, y).is_ok());
  EXPECT_EQ(test::read_f32(y), std::vector<float>(12, -inf));
  // In place.
  ASSERT_TRUE(ops::softmax(s, x, x).is_ok());
  EXPECT_EQ(test::read_f32(x)[0], 0.25f);
}

TEST(Softmax, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::BF16, {6, 64}).value();
  auto y = cpu.alloc(DType::F32, {6, 64}).value();
  auto m_wide = cpu.alloc(DType::F32, {6, 65}).value();
  EXPECT_NE(ops::softmax(s, x, m_wide, y).message().find("mask has shape"), std::string::npos);
  auto m_rows = cpu.alloc(DType::F32, {4, 64}).value();
  EXPECT_EQ(ops::softmax(s, x, m_rows, y).message(), "[softmax] mask has 4 rows, which does not divide x's 6");
  auto m_int = cpu.alloc(DType::I32, {1, 64}).value();
  EXPECT_EQ(ops::softmax(s, x, m_int, y).code(), StatusCode::Unsupported);
  EXPECT_NE(ops::log_softmax(s, x, Buffer(), cpu.alloc(DType::F32, {6, 63}).value()).message().find("y has shape"),
            std::string::npos);
  EXPECT_EQ(ops::softmax(s, x, Buffer(), y, {NAN}).code(), StatusCode::InvalidArgument);
  auto m_y = y.view(0, DType::F32, {1, 64}).value();
  EXPECT_NE(ops::softmax(s, x, m_y, y).message().find("mask and y overlap"), std::string::npos);
  auto big = cpu.alloc(DType::BF16, {7, 64}).value();
  EXPECT_NE(ops::softmax(s, big.slice(0, 0, 6).value(), big.slice(0, 1, 6).value()).message().find("overlap"),
            std::string::npos);
}

}  // namespace
}  // namespace mlxn
