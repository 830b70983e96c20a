// Quantized matmul on the CPU backend against the float64 reference of qmatmul_cases.h, and its error paths.
#include "qmatmul_cases.h"

namespace mlxn {
namespace {

TEST(QMatmul, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::qmatmul_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c, seed);
    auto run = test::run_qmatmul(Device::cpu(), c, q, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    // The CPU dequantizes exactly and accumulates in float64: only the output rounding remains.
    EXPECT_LE(test::rel_l2(run.y, run.ref), c.tx == DType::F32 ? 1e-6 : c.tx == DType::F16 ? 1e-3 : 4e-3);
  }
}

// The GPU bound of the int8 kernel (qmatmul_err_int8) must be able to fail: a result that misses one 32-element
// block, or scales one by a wrong sub-block scale (a quarter off), exceeds it. The exact CPU result passes it.
TEST(QMatmul, Int8BoundCatchesWrongBlocks) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : test::qmatmul_formats()) {
    SCOPED_TRACE(detail::cat(t));
    const int64_t kb = dtype_info(t).block_elems;
    const test::QMatmulCase c{t, 0, 0, DType::F16, 3, 17, kb, DType::F32, 0};
    const auto q = test::make_qweights(c, seed);
    const auto run = test::run_qmatmul(Device::cpu(), c, q, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    EXPECT_LE(test::qmatmul_err_int8(run, 1e-5), 1.0);
    for (double factor : {0.0, 1.25}) {
      auto bad = run;
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
          double part = 0;  // block 0's contribution
          for (int64_t k = 0; k < 32; ++k) part += static_cast<double>(run.x[m * c.K + k]) * q.w[n * c.K + k];
          bad.y[m * c.N + n] = static_cast<float>(run.ref[m * c.N + n] + (factor - 1.0) * part);
        }
      EXPECT_GT(test::qmatmul_err_int8(bad, 1e-5), 1.0) << "block 0 scaled by " << factor;
    }
  }
}

TEST(QMatmul, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::F32, {2, 256}).value();
  auto y = cpu.alloc(DType::F32, {2, 8}).value();
  auto w = cpu.alloc(DType::Q4_K, {8, 256}).value();
  ASSERT_TRUE(w.fill_bytes(0).is_ok());
  EXPECT_TRUE(ops::matmul(s, x, w, y).is_ok());
  // K mismatch, wrong output shape, block types that are not weight formats.
  EXPECT_EQ(ops::matmul(s, cpu.alloc(DType::F32, {2, 512}).value(), w, y).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(ops::matmul(s, x, w, cpu.alloc(DType::F32, {2, 9}).value()).code(), StatusCode::InvalidArgument);
  Status q8k = ops::matmul(s, x, cpu.alloc(DType::Q8_K, {8, 256}).value(), y);
  EXPECT_EQ(q8k.code(), StatusCode::Unsupported);
  EXPECT_NE(q8k.message().find("q8_K"), std::string::npos) << q8k.message();
  // A weight view at an odd byte offset.
  auto raw = cpu.alloc(DType::U8, {8 * 144 + 2}).value();
  auto odd = raw.view(2, DType::Q4_K, {8, 256}).value();
  Status al = ops::matmul(s, x, odd, y);
  EXPECT_NE(al.message().find("aligned"), std::string::npos) << al.message();
  // Affine: bad bits, group not dividing K, scales of the wrong shape or dtype.
  ops::AffineWeight aw;
  aw.bits = 4;
  aw.group_size = 64;
  aw.packed = cpu.alloc(DType::U32, {8, 32}).value();
  aw.scales = cpu.alloc(DType::F16, {8, 4}).value();
  aw.biases = cpu.alloc(DType::F16, {8, 4}).value();
  for (const Buffer* b : {&aw.packed, &aw.scales, &aw.biases}) ASSERT_TRUE(b->fill_bytes(0).is_ok());
  EXPECT_TRUE(ops::matmul_affine(s, x, aw, y).is_ok());
  auto bad = aw;
  bad.bits = 7;
  EXPECT_EQ(ops::matmul_affine(s, x, bad, y).code(), StatusCode::InvalidArgument);
  bad = aw;
  bad.group_size = 96;
  EXPECT_EQ(ops::matmul_affine(s, x, bad, y).code(), StatusCode::InvalidArgument);
  bad = aw;
  bad.scales = cpu.alloc(DType::F16, {8, 5}).value();
  EXPECT_EQ(ops::matmul_affine(s, x, bad, y).code(), StatusCode::InvalidArgument);
  bad = aw;
  bad.biases = cpu.alloc(DType::BF16, {8, 4}).value();
  EXPECT_EQ(ops::matmul_affine(s, x, bad, y).code(), StatusCode::InvalidArgument);
  bad = aw;
  bad.scales = cpu.alloc(DType::I32, {8, 4}).value();
  EXPECT_EQ(ops::matmul_affine(s, x, bad, y).code(), StatusCode::Unsupported);
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
