// Layout ops on the CPU backend against index computations written in tests/layout_cases.h, and the error paths.
#include "layout_cases.h"

namespace mlxn {
namespace {

class Layout : public ::testing::Test {
 protected:
  void SetUp() override { seed_ = test::fresh_seed(); }
  uint64_t seed_ = 0;
};

TEST_F(Layout, Permute) {
  SCOPED_TRACE(detail::cat("seed ", seed_));
  test::check_permute(Device::cpu(), seed_);
}
TEST_F(Layout, Repeat) {
  SCOPED_TRACE(detail::cat("seed ", seed_));
  test::check_repeat(Device::cpu(), seed_);
}
TEST_F(Layout, ConcatSplit) {
  SCOPED_TRACE(detail::cat("seed ", seed_));
  test::check_concat_split(Device::cpu(), seed_);
}
TEST_F(Layout, Slice) {
  SCOPED_TRACE(detail::cat("seed ", seed_));
  test::check_slice(Device::cpu(), seed_);
}
TEST_F(Layout, GatherScatter) {
  SCOPED_TRACE(detail::cat("seed ", seed_));
  test::check_gather_scatter(Device::cpu(), seed_);
}
TEST_F(Layout, QkvSplit) {
  SCOPED_TRACE(detail::cat("seed ", seed_));
  test::check_qkv_split(Device::cpu(), seed_);
}

TEST(LayoutErrors, Messages) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::BF16, {4, 6, 8}).value();
  auto y = cpu.alloc(DType::BF16, {4, 8, 6}).value();
  EXPECT_TRUE(ops::permute(s, x, {0, 2, 1}, y).is_ok());
  EXPECT_NE(ops::permute(s, x, {0, 1, 1}, y).message().find("not a permutation"), std::string::npos);
  EXPECT_NE(ops::permute(s, x, {0, 1}, y).message().find("perm has 2 entries"), std::string::npos);
  EXPECT_NE(ops::permute(s, x, {1, 0, 2}, y).message().find("[permute] out has shape"), std::string::npos);
  auto y32 = cpu.alloc(DType::F32, {4, 8, 6}).value();
  EXPECT_NE(ops::permute(s, x, {0, 2, 1}, y32).message().find("dtype"), std::string::npos);
  auto big = cpu.alloc(DType::BF16, {2000}).value();
  auto a = big.view(0, DType::BF16, {4, 6, 8}).value(), b = big.view(64, DType::BF16, {4, 8, 6}).value();
  EXPECT_NE(ops::permute(s, a, {0, 2, 1}, b).message().find("overlap"), std::string::npos);
  auto q = cpu.alloc(DType::Q8_0, {2, 64}).value(), q2 = cpu.alloc(DType::Q8_0, {64, 2 * 32}).value();
  EXPECT_EQ(ops::permute(s, q, {1, 0}, q2).code(), StatusCode::Unsupported);
  EXPECT_EQ(ops::transpose(s, big, big).code(), StatusCode::InvalidArgument);

  auto r = cpu.alloc(DType::BF16, {4, 12, 8}).value();
  EXPECT_TRUE(ops::repeat(s, x, {1, 2, 1}, r).is_ok());
  EXPECT_NE(ops::repeat(s, x, {1, 3, 1}, r).message().find("[repeat] out has shape"), std::string::npos);
  EXPECT_EQ(ops::repeat(s, x, {1, -1, 1}, r).code(), StatusCode::InvalidArgument);

  auto c1 = cpu.alloc(DType::BF16, {4, 2, 8}).value();
  auto cat = cpu.alloc(DType::BF16, {4, 8, 8}).value();
  const Buffer ins[2] = {x, c1};
  EXPECT_TRUE(ops::concat(s, ins, 1, cat).is_ok());
  EXPECT_NE(ops::concat(s, ins, 2, cat).message().find("differs"), std::string::npos);
  EXPECT_NE(ops::concat(s, ins, 3, cat).message().find("axis 3 out of range"), std::string::npos);
  const Buffer ins_bad[2] = {x, x};
  EXPECT_NE(ops::concat(s, ins_bad, 1, cat).message().find("add up to 12"), std::string::npos);
  const Buffer ins_self[2] = {x, cat.slice(1, 0, 2).value()};
  EXPECT_NE(ops::concat(s, ins_self, 1, cat).message().find("overlap"), std::string::npos);
  EXPECT_EQ(ops::concat(s, std::span<const Buffer>(), 0, cat).code(), StatusCode::InvalidArgument);
  // Block types split inside a row.
  auto qa = cpu.alloc(DType::Q8_0, {2, 32}).value(), qc = cpu.alloc(DType::Q8_0, {2, 64}).value();
  const Buffer qins[2] = {qa, qa};
  EXPECT_TRUE(ops::concat(s, qins, 1, qc).is_ok());  // whole blocks: fine

  auto tab = cpu.alloc(DType::F32, {10, 4}).value();
  auto idx = cpu.alloc(DType::I32, {3}).value();
  auto out = cpu.alloc(DType::F32, {3, 4}).value();
  ASSERT_TRUE(idx.fill_bytes(0).is_ok());
  EXPECT_TRUE(ops::gather_rows(s, tab, idx, out).is_ok());
  auto idx64 = cpu.alloc(DType::I64, {3}).value();
  EXPECT_NE(ops::gather_rows(s, tab, idx64, out).message().find("idx has dtype i64"), std::string::npos);
  auto out_bad = cpu.alloc(DType::F32, {3, 5}).value();
  EXPECT_NE(ops::gather_rows(s, tab, idx, out_bad).message().find("[gather_rows] out has shape"), std::string::npos);
  EXPECT_NE(ops::scatter_rows(s, out_bad, idx, tab).message().find("[scatter_rows] src has shape"), std::string::npos);

  auto qkv = cpu.alloc(DType::BF16, {2, 48}).value();
  auto qq = cpu.alloc(DType::BF16, {2, 32}).value(), kk = cpu.alloc(DType::BF16, {2, 8}).value(),
       vv = cpu.alloc(DType::BF16, {2, 8}).value(), v9 = cpu.alloc(DType::BF16, {2, 9}).value();
  EXPECT_TRUE(ops::qkv_split(s, qkv, qq, kk, vv).is_ok());
  EXPECT_NE(ops::qkv_split(s, qkv, qq, kk, v9).message().find("add up to 49"), std::string::npos);
  EXPECT_NE(ops::qkv_split(s, qkv, qq, kk, kk).message().find("overlap"), std::string::npos);
}

}  // namespace
}  // namespace mlxn
