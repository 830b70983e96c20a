// Activations on the CPU backend against double-precision definitions written here, closed forms and error paths.
#include "activation_cases.h"

namespace mlxn {
namespace {

TEST(Activation, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::act_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    auto run = test::run_act(Device::cpu(), c, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    auto ref = test::act_reference(c, run);
    std::vector<float> reff(ref.begin(), ref.end());
    // One rounding of the output (and the reference's own double error in the far tails: the absolute floor).
    EXPECT_LE(test::max_scaled_err(run.y, reff, test::atol_for(c.ty), test::rtol_for(c.ty) / 2), 1.0);
  }
}

TEST(Activation, ClosedForms) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = test::make_buffer(cpu, DType::F32, {4}, {0, 1, -1, 30});
  auto y = cpu.alloc(DType::F32, {4}).value();
  const double e = std::exp(1.0);
  ASSERT_TRUE(ops::silu(s, x, y).is_ok());
  auto v = test::read_f32(y);
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_FLOAT_EQ(v[1], static_cast<float>(e / (e + 1)));
  EXPECT_FLOAT_EQ(v[2], static_cast<float>(-1 / (e + 1)));
  EXPECT_FLOAT_EQ(v[3], 30.0f);
  ASSERT_TRUE(ops::gelu(s, x, y).is_ok());
  v = test::read_f32(y);
  EXPECT_FLOAT_EQ(v[1], 0.8413447460685429f);  // Phi(1)
  EXPECT_FLOAT_EQ(v[2], -0.15865525393145707f);
  ASSERT_TRUE(ops::gelu_tanh(s, x, y).is_ok());
  v = test::read_f32(y);
  EXPECT_NEAR(v[1], 0.8411919906082768, 1e-7);  // the tanh approximation differs from Phi(1) in the 4th digit
  ASSERT_TRUE(ops::sigmoid(s, x, y).is_ok());
  EXPECT_FLOAT_EQ(test::read_f32(y)[0], 0.5f);
  ASSERT_TRUE(ops::softcap(s, x, y, 30.0f).is_ok());
  EXPECT_FLOAT_EQ(test::read_f32(y)[3], static_cast<float>(30 * std::tanh(1.0)));
  // sigmoid_mul(x, gate) = x * sigmoid(gate); swiglu on a split tensor takes the gate from the first half.
  auto g = test::make_buffer(cpu, DType::F32, {4}, {0, 0, 1000, -1000});
  ASSERT_TRUE(ops::sigmoid_mul(s, x, g, y).is_ok());
  EXPECT_EQ(test::read_f32(y), (std::vector<float>{0, 0.5f, -1, 0}));
  auto gu = test::make_buffer(cpu, DType::F32, {2, 4}, {1, 0, 2, 3, -1, 30, 5, 7});
  auto y2 = cpu.alloc(DType::F32, {2, 2}).value();
  ASSERT_TRUE(ops::glu_split(s, ops::Activation::Silu, gu, y2).is_ok());
  v = test::read_f32(y2);
  EXPECT_FLOAT_EQ(v[0], static_cast<float>(2 * e / (e + 1)));
  EXPECT_EQ(v[1], 0.0f);
  EXPECT_FLOAT_EQ(v[2], static_cast<float>(-5 / (e + 1)));
  EXPECT_FLOAT_EQ(v[3], 210.0f);
  // In place.
  ASSERT_TRUE(ops::silu(s, x, x).is_ok());
  EXPECT_FLOAT_EQ(test::read_f32(x)[1], static_cast<float>(e / (e + 1)));
}

TEST(Activation, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::BF16, {4, 64}).value();
  auto u = cpu.alloc(DType::F16, {4, 64}).value();
  auto y = cpu.alloc(DType::BF16, {4, 64}).value();
  Status st = ops::swiglu(s, x, u, y);
  EXPECT_EQ(st.code(), StatusCode::Unsupported);
  EXPECT_EQ(st.message(), "[swiglu] up has dtype f16; expected gate's (bf16)");
  auto u2 = cpu.alloc(DType::BF16, {4, 32}).value();
  EXPECT_NE(ops::geglu(s, x, u2, y).message().find("up has shape"), std::string::npos);
  auto y_bad = cpu.alloc(DType::BF16, {4, 64}).value();
  EXPECT_NE(ops::glu_split(s, ops::Activation::Silu, x, y_bad).message().find("expected [4, 32]"), std::string::npos)
      << ops::glu_split(s, ops::Activation::Silu, x, y_bad).message();
  auto odd = cpu.alloc(DType::BF16, {4, 63}).value();
  EXPECT_NE(ops::glu_split(s, ops::Activation::Silu, odd, y).message().find("odd"), std::string::npos);
  auto half = x.view(0, DType::BF16, {4, 32}).value();
  EXPECT_NE(ops::glu_split(s, ops::Activation::Silu, x, half).message().find("overlap"), std::string::npos);
  EXPECT_EQ(ops::softcap(s, x, y, 0.0f).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(ops::softcap(s, x, y, INFINITY).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(ops::activation(s, static_cast<ops::Activation>(9), x, y).code(), StatusCode::InvalidArgument);
  auto xi = cpu.alloc(DType::I32, {4, 64}).value();
  EXPECT_EQ(ops::silu(s, xi, y).code(), StatusCode::Unsupported);
  EXPECT_NE(ops::silu(s, x, cpu.alloc(DType::BF16, {4, 65}).value()).message().find("y has shape"), std::string::npos);
  auto big = cpu.alloc(DType::BF16, {5, 64}).value();
  EXPECT_NE(ops::gelu(s, big.slice(0, 0, 4).value(), big.slice(0, 1, 4).value()).message().find("overlap"),
            std::string::npos);
}

}  // namespace
}  // namespace mlxn
