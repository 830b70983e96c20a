// Dense matmul on the CPU backend against a float64 reference computed here.
#include "matmul_cases.h"

namespace mlxn {
namespace {

TEST(Matmul, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<test::MatmulCase> cases = {
      {1, 1, 1, DType::F32, DType::F32, 0},     {1, 7, 33, DType::BF16, DType::BF16, 0},
      {3, 64, 250, DType::F32, DType::BF16, 5}, {17, 31, 96, DType::F16, DType::F16, 0},
      {5, 129, 512, DType::BF16, DType::F32, 3}};
  for (const auto& c : cases) {
    SCOPED_TRACE(test::describe(c));
    auto run = test::run_matmul(Device::cpu(), c, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    // Only the output rounding separates the CPU reference from the float64 one.
    EXPECT_LE(test::rel_l2(run.y, test::matmul_reference(run, c)), c.tx == DType::F32 ? 1e-6 : 4e-3);
  }
}

TEST(Matmul, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::BF16, {2, 64}).value();
  auto w = cpu.alloc(DType::BF16, {32, 64}).value();
  auto y = cpu.alloc(DType::BF16, {2, 32}).value();
  EXPECT_EQ(ops::matmul(s, x, w, cpu.alloc(DType::BF16, {2, 31}).value()).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(ops::matmul(s, x, cpu.alloc(DType::BF16, {32, 63}).value(), y).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(ops::matmul(s, x, cpu.alloc(DType::BF16, {32}).value(), y).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(ops::matmul(s, x, w, cpu.alloc(DType::F32, {2, 32}).value()).code(), StatusCode::Unsupported);
  EXPECT_EQ(ops::matmul(s, x, cpu.alloc(DType::I8, {32, 64}).value(), y).code(), StatusCode::Unsupported);
  auto cols = w.slice(1, 0, 32).value();  // a column slice of W is not contiguous
  EXPECT_EQ(ops::matmul(s, x.slice(1, 0, 32).value(), cols, y).code(), StatusCode::InvalidArgument);
  Status ov = ops::matmul(s, x, w, x.view(0, DType::BF16, {2, 32}).value());
  EXPECT_NE(ov.message().find("overlaps"), std::string::npos);
}

}  // namespace
}  // namespace mlxn
