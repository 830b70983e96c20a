// Expert-routed matmul on the CPU backend: against the float64 reference of matmul_experts_cases.h, against
// running each selected expert separately through ops::matmul, and its error paths.
#include "matmul_experts_cases.h"

namespace mlxn {
namespace {

TEST(MatmulExperts, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::experts_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    const auto d = test::make_experts_data(c, seed);
    const auto run = test::run_experts(Device::cpu(), c, d);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    EXPECT_LE(test::experts_err(c, d, run, true), 1.0);
  }
}

// Gated form: act(gate) * up against the float64 reference, for each activation.
TEST(MatmulExperts, CpuGluMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const ops::Activation acts[] = {ops::Activation::Silu, ops::Activation::Gelu, ops::Activation::GeluTanh,
                                  ops::Activation::Sigmoid};
  int i = 0;
  for (const auto& c : test::experts_cases(false)) {
    const ops::Activation act = acts[i++ % 4];
    SCOPED_TRACE(detail::cat(test::describe(c), " act ", static_cast<int>(act)));
    const auto g = test::make_experts_data(c, seed);
    const auto u = test::make_up_data(c, g, seed);
    const auto run = test::run_experts_glu(Device::cpu(), c, g, u, act, true);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    EXPECT_LE(test::glu_err(c, g, run), 1.0);
  }
}

TEST(MatmulExperts, GluErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::F32, {2, 64}).value();
  auto wg = cpu.alloc(DType::Q8_0, {4, 8, 64}).value();
  auto wu = cpu.alloc(DType::Q8_0, {4, 8, 64}).value();
  auto ids = cpu.alloc(DType::I32, {2, 2}).value();
  auto y = cpu.alloc(DType::F32, {2, 2, 8}).value();
  ASSERT_TRUE(wg.upload(std::vector<uint8_t>(wg.nbytes(), 0).data(), wg.nbytes()).is_ok());
  ASSERT_TRUE(wu.upload(std::vector<uint8_t>(wu.nbytes(), 0).data(), wu.nbytes()).is_ok());
  ASSERT_TRUE(ids.upload(std::vector<int32_t>{0, 1, 2, 3}.data(), 16).is_ok());
  EXPECT_TRUE(ops::matmul_experts_glu(s, ops::Activation::Silu, x, wg, wu, ids, y).is_ok());
  auto other = cpu.alloc(DType::Q4_0, {4, 8, 64}).value();
  Status st = ops::matmul_experts_glu(s, ops::Activation::Silu, x, wg, other, ids, y);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  EXPECT_NE(st.message().find("w_up"), std::string::npos) << st.message();
  auto narrow = cpu.alloc(DType::Q8_0, {4, 4, 64}).value();
  EXPECT_EQ(ops::matmul_experts_glu(s, ops::Activation::Silu, x, wg, narrow, ids, y).code(),
            StatusCode::InvalidArgument);
  Status ov =
      ops::matmul_experts_glu(s, ops::Activation::Silu, x, wg, wu, ids, x.view(0, DType::F32, {2, 2, 8}).value());
  EXPECT_FALSE(ov.is_ok());
}

// Each slot's row equals ops::matmul of its x row with its expert's [N, K] slice of w, which is how a model without the
// routed op would run it.
TEST(MatmulExperts, CpuEqualsPerExpertMatmul) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  for (const auto& c : test::experts_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    const auto d = test::make_experts_data(c, seed);
    const auto run = test::run_experts(cpu, c, d);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    const size_t expert_bytes = d.wbytes.size() / static_cast<size_t>(c.E);
    auto s = Session::create(cpu).value();
    for (int64_t z = 0; z < c.T * c.k; ++z) {
      const int64_t e = d.ids[static_cast<size_t>(z)];
      if (e < 0 || e >= c.E) continue;
      const int64_t xr = c.per_slot ? z : z / c.k;
      auto x = test::make_buffer(cpu, c.tx, {1, c.K},
                                 std::vector<float>(d.x.begin() + xr * c.K, d.x.begin() + (xr + 1) * c.K));
      // The expert's bytes as their own buffer (a view at e * expert_bytes may not be 4-byte aligned).
      auto we = cpu.alloc(c.tw, {c.N, c.K}).value();
      ASSERT_TRUE(we.upload(d.wbytes.data() + static_cast<size_t>(e) * expert_bytes, expert_bytes).is_ok());
      auto y = cpu.alloc(c.tx, {1, c.N}).value();
      ASSERT_TRUE(ops::matmul(s, x, we, y).is_ok());
      ASSERT_TRUE(s.finish().is_ok());
      const auto yv = test::read_f32(y);
      for (int64_t n = 0; n < c.N; ++n) {
        const size_t i = static_cast<size_t>(z * c.N + n);
        EXPECT_NEAR(run.y[i], yv[static_cast<size_t>(n)],
                    1e-6 * run.sum_xw[i] + test::rtol_for(c.tx) * std::abs(run.ref[i]))
            << "slot " << z << " row " << n;
      }
    }
  }
}

TEST(MatmulExperts, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto x = cpu.alloc(DType::F32, {2, 256}).value();
  auto w = cpu.alloc(DType::Q4_K, {4, 8, 256}).value();
  auto ids = cpu.alloc(DType::I32, {2, 3}).value();
  auto y = cpu.alloc(DType::F32, {2, 3, 8}).value();
  for (const Buffer* b : {&x, &w, &ids}) ASSERT_TRUE(b->fill_bytes(0).is_ok());
  EXPECT_TRUE(ops::matmul_experts(s, x, w, ids, y).is_ok());
  auto code = [&](const Buffer& xx, const Buffer& ww, const Buffer& ii, const Buffer& yy) {
    return ops::matmul_experts(s, xx, ww, ii, yy).code();
  };
  // w: rank 2, a block type that is not a weight format, K not whole blocks.
  EXPECT_EQ(code(x, cpu.alloc(DType::Q4_K, {8, 256}).value(), ids, y), StatusCode::InvalidArgument);
  Status q8k = ops::matmul_experts(s, x, cpu.alloc(DType::Q8_K, {4, 8, 256}).value(), ids, y);
  EXPECT_EQ(q8k.code(), StatusCode::Unsupported);
  EXPECT_NE(q8k.message().find("matmul_experts"), std::string::npos) << q8k.message();
  EXPECT_EQ(code(cpu.alloc(DType::F32, {2, 96}).value(), cpu.alloc(DType::Q4_0, {4, 8, 96}).value(), ids, y),
            StatusCode::Ok);
  // ids: wrong dtype, wrong rank.
  EXPECT_EQ(code(x, w, cpu.alloc(DType::F32, {2, 3}).value(), y), StatusCode::InvalidArgument);
  EXPECT_EQ(code(x, w, cpu.alloc(DType::I32, {6}).value(), y), StatusCode::InvalidArgument);
  // x: rows not T, K mismatch, [T, k, K] with the wrong k, rank 1.
  EXPECT_EQ(code(cpu.alloc(DType::F32, {3, 256}).value(), w, ids, y), StatusCode::InvalidArgument);
  EXPECT_EQ(code(cpu.alloc(DType::F32, {2, 512}).value(), w, ids, y), StatusCode::InvalidArgument);
  EXPECT_EQ(code(cpu.alloc(DType::F32, {2, 2, 256}).value(), w, ids, y), StatusCode::InvalidArgument);
  EXPECT_EQ(code(cpu.alloc(DType::F32, {2, 3, 256}).value(), w, ids, y), StatusCode::Ok);
  EXPECT_EQ(code(cpu.alloc(DType::F32, {256}).value(), w, ids, y), StatusCode::InvalidArgument);
  // y: wrong shape, wrong dtype, overlapping x.
  EXPECT_EQ(code(x, w, ids, cpu.alloc(DType::F32, {2, 8}).value()), StatusCode::InvalidArgument);
  EXPECT_EQ(code(x, w, ids, cpu.alloc(DType::BF16, {2, 3, 8}).value()), StatusCode::Unsupported);
  auto big = cpu.alloc(DType::F32, {2 * 256 + 48}).value();
  auto xv = big.view(0, DType::F32, {2, 256}).value();
  auto yv = big.view(4 * 100, DType::F32, {2, 3, 8}).value();
  EXPECT_EQ(code(xv, w, ids, yv), StatusCode::InvalidArgument);
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
