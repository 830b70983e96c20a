// The fused quantized matmul (RMSNorm weight and row scale, residual) on the CPU backend against the independent
// float64 reference of qmatmul_fused_cases.h, the bound the GPU test uses, capture and replay, and the error paths.
#include "qmatmul_fused_cases.h"

namespace mlxn {
namespace {

using test::FusedResidual;


// The parts of the fusion one at a time and together, over y dtypes other than x's: norm only; residual only; both,
// in place; a bf16 activation into an f32 residual stream; Gemma's stored (w - 1) with offset 1.
std::vector<test::FusedCase> cpu_cases(const test::FusedWeight& w, int64_t M, int64_t N) {
  // A few blocks: 3 super-blocks for the K-quants, 3 blocks (groups) otherwise.
  const int64_t K = 3 * w.block();
  std::vector<test::FusedCase> v = {
      test::fused_case(w, M, N, K, DType::F32, DType::F32, DType::F32, 0.0f, FusedResidual::None),
      test::fused_case(w, M, N, K, DType::F16, DType::F16, std::nullopt, 0.0f, FusedResidual::Separate),
      test::fused_case(w, M, N, K, DType::BF16, DType::BF16, DType::BF16, 0.0f, FusedResidual::InPlace),
      test::fused_case(w, M, N, K, DType::BF16, DType::F32, DType::F32, 0.0f, FusedResidual::InPlace),
      test::fused_case(w, M, N, K, DType::BF16, DType::F32, DType::F16, 1.0f, FusedResidual::Separate),
  };
  // x so small that eps is half of mean(x^2): g would be sqrt(1.5) times too large were eps left out.
  auto tiny = test::fused_case(w, M, N, K, DType::F32, DType::F32, DType::F32, 0.0f, FusedResidual::Separate);
  tiny.x_scale = 1e-3f;
  tiny.eps = 5e-7f;
  v.push_back(tiny);
  return v;
}

TEST(QMatmulFused, CpuMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& w : test::fused_weights())
    for (int64_t N : {37, 1}) {
      // One weight per format and N, shared by the M and the dtype combinations (their K is the same).
      const auto q = test::make_qweights(cpu_cases(w, 1, N)[0].q, seed);
      for (int64_t M : {1, 3, 7})
        for (const auto& c : cpu_cases(w, M, N)) {
          SCOPED_TRACE(test::describe(c));
          const auto d = test::make_fused_data(c, q, seed + static_cast<uint64_t>(M));
          const auto run = test::run_fused(Device::cpu(), c, q, d);
          ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
          // Dequantized exactly, xe rounded to f32 once, float64 sums: one rounding to y's dtype remains.
          EXPECT_LE(test::fused_err(run.y, c, d, false), 1.0);
        }
    }
}

// The GPU test's bound (the int8 kernel's) must be able to fail: the exact result with the row scale g left out,
// the residual left out, or the norm offset left out exceeds it, while the exact result passes.
TEST(QMatmulFused, Int8BoundCatchesMissingParts) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const test::FusedWeight w :
       {test::FusedWeight{DType::Q4_0, 0, 0, DType::F16}, test::FusedWeight{DType::Q4_K, 0, 0, DType::F16},
        test::FusedWeight{DType::U32, 4, 64, DType::F16}}) {
    const auto c =
        test::fused_case(w, 3, 37, 3 * w.block(), DType::BF16, DType::F32, DType::BF16, 1.0f, FusedResidual::Separate);
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c.q, seed);
    const auto d = test::make_fused_data(c, q, seed);
    const auto run = test::run_fused(Device::cpu(), c, q, d);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    EXPECT_LE(test::fused_err(run.y, c, d, true), 1.0);
    const int64_t M = c.q.M, N = c.q.N, K = c.q.K;
    std::vector<float> no_g(run.y.size()), no_r(run.y.size()), no_offset(run.y.size());
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const size_t i = static_cast<size_t>(m * N + n);
        const double g = d.g[static_cast<size_t>(m)];
        double offset_part = 0;  // g sum_k x * offset * W: what the offset contributes
        for (int64_t k = 0; k < K; ++k)
          offset_part += static_cast<double>(d.x[m * K + k]) * c.norm_offset * q.w[n * K + k];
        no_g[i] = static_cast<float>(d.r[i] + d.delta[i] / g);
        no_r[i] = static_cast<float>(d.delta[i]);
        no_offset[i] = static_cast<float>(test::fused_ref(d, i) - g * offset_part);
      }
    EXPECT_GT(test::fused_err(no_g, c, d, true), 1.0) << "without g";
    EXPECT_GT(test::fused_err(no_r, c, d, true), 1.0) << "without the residual";
    EXPECT_GT(test::fused_err(no_offset, c, d, true), 1.0) << "without the norm offset";
  }
}

// A captured in-place op replays as many times as asked, each adding its product to what y holds then.
TEST(QMatmulFused, CpuGraphReplayAccumulatesResidual) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const auto c = test::fused_case(test::FusedWeight{DType::Q4_K, 0, 0, DType::F16}, 2, 37, 512, DType::BF16, DType::F32,
                                  DType::BF16, 0.0f, FusedResidual::InPlace);
  const auto q = test::make_qweights(c.q, seed);
  const auto d = test::make_fused_data(c, q, seed);
  Device cpu = Device::cpu();
  const auto b = test::make_fused_buffers(cpu, c, q, d);
  auto s = Session::create(cpu).value();
  ASSERT_TRUE(s.begin_capture().is_ok());
  ASSERT_TRUE(test::record_fused(s, c, b).is_ok());
  auto g = s.end_capture();
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  // Nothing ran during the capture: y still holds the residual.
  EXPECT_EQ(test::read_f32(b.y), d.r);
  ASSERT_TRUE(g->replay().is_ok());
  ASSERT_TRUE(g->replay().is_ok());
  ASSERT_TRUE(s.finish().is_ok());
  EXPECT_LE(test::fused_err(test::read_f32(b.y), c, d, false, 2), 1.0);
}

// The gated form (act(gate) * up over a fused gate|up weight, the norm applied to both products) on the CPU, with
// and without a norm, and its errors: an odd row count, and MLX affine weights.
TEST(QMatmulFused, CpuGatedMatchesReference) {
  const Device cpu = Device::cpu();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::MXFP4}) {
    const int64_t K = dtype_info(t).block_elems == 256 ? 512 : 96;
    for (bool norm : {false, true}) {
      const test::FusedWeight fw{t, 0, 0, DType::F16};
      const auto c = test::fused_case(fw, 3, 2 * 19, K, DType::BF16, DType::F32,
                                      norm ? std::optional<DType>(DType::F32) : std::nullopt, 0.0f,
                                      FusedResidual::None);
      test::expect_glu_matches(cpu, c, seed, false);
    }
  }
  const Status odd = test::glu_call(cpu, 1, 7, 3);
  EXPECT_FALSE(odd.is_ok());
  EXPECT_NE(odd.to_string().find("2N rows"), std::string::npos) << odd.to_string();
  auto s = Session::create(cpu).value();
  ops::MatmulFusion f;
  f.glu = true;
  auto x = cpu.alloc(DType::F32, {1, 64}).value();
  ops::AffineWeight aw;
  aw.packed = cpu.alloc(DType::U32, {8, 8}).value();
  aw.scales = cpu.alloc(DType::F16, {8, 1}).value();
  aw.biases = cpu.alloc(DType::F16, {8, 1}).value();
  auto y4 = cpu.alloc(DType::F32, {1, 4}).value();
  const Status affine = ops::matmul_affine(s, x, aw, y4, f);
  EXPECT_NE(affine.to_string().find("GGML"), std::string::npos) << affine.to_string();
}

TEST(QMatmulFused, CpuAlwaysFuses) {
  EXPECT_TRUE(ops::matmul_fuses(Device::cpu(), 100, 100000));
  EXPECT_TRUE(ops::matmul_fuses(Device::cpu(), 1, 32));
}

// Expects a failed status whose message names `what`.
void expect_error(const Status& st, StatusCode code, const std::string& what) {
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), code) << st.to_string();
  EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
}

TEST(QMatmulFused, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  constexpr int64_t M = 2, N = 8, K = 64;
  auto x = cpu.alloc(DType::BF16, {M, K}).value();
  auto w = cpu.alloc(DType::Q8_0, {N, K}).value();
  auto y = cpu.alloc(DType::F32, {M, N}).value();
  auto norm = cpu.alloc(DType::F32, {K}).value();
  for (const Buffer* b : {&x, &w, &y, &norm}) ASSERT_TRUE(b->fill_bytes(0).is_ok());
  ops::MatmulFusion f;
  f.norm = norm;
  f.residual = y;
  // The valid call the cases below each break in one way (bf16 x into an f32 y, in place).
  ASSERT_TRUE(ops::matmul(s, x, w, y, f).is_ok());

  auto bad = f;
  bad.norm = cpu.alloc(DType::F32, {K - 32}).value();
  expect_error(ops::matmul(s, x, w, y, bad), StatusCode::InvalidArgument, "norm");
  bad = f;
  bad.norm = cpu.alloc(DType::I32, {K}).value();
  EXPECT_FALSE(ops::matmul(s, x, w, y, bad).is_ok());
  bad = f;
  bad.eps = -1.0f;
  expect_error(ops::matmul(s, x, w, y, bad), StatusCode::InvalidArgument, "eps");
  bad = f;
  bad.residual = cpu.alloc(DType::BF16, {M, N}).value();
  expect_error(ops::matmul(s, x, w, y, bad), StatusCode::InvalidArgument, "residual");
  bad = f;
  bad.residual = cpu.alloc(DType::F32, {M, N + 1}).value();
  expect_error(ops::matmul(s, x, w, y, bad), StatusCode::InvalidArgument, "residual");

  // A residual one row further into the storage y starts: they share M - 1 rows without being the same view.
  auto both = cpu.alloc(DType::F32, {M + 1, N}).value();
  ASSERT_TRUE(both.fill_bytes(0).is_ok());
  auto y_lo = both.view(0, DType::F32, {M, N}).value();
  auto y_hi = both.view(N * sizeof(float), DType::F32, {M, N}).value();
  bad = f;
  bad.residual = y_hi;
  expect_error(ops::matmul(s, x, w, y_lo, bad), StatusCode::InvalidArgument, "overlaps y");
  // The same view of the same storage is the in-place form.
  bad.residual = both.view(0, DType::F32, {M, N}).value();
  EXPECT_TRUE(ops::matmul(s, x, w, y_lo, bad).is_ok());

  // A residual whose rows are not y's row stride apart.
  auto wide = cpu.alloc(DType::F32, {M, 2 * N}).value();
  Strides st{};
  st[0] = 2 * N;
  st[1] = 1;
  auto y_strided = wide.view_strided(0, DType::F32, {M, N}, st).value();
  bad = f;
  bad.residual = cpu.alloc(DType::F32, {M, N}).value();
  ASSERT_TRUE(bad.residual.fill_bytes(0).is_ok());
  expect_error(ops::matmul(s, x, w, y_strided, bad), StatusCode::InvalidArgument, "row stride");

  // Dense weights have no fused form; without a fusion they take the dense path (y in x's dtype).
  auto dense = cpu.alloc(DType::BF16, {N, K}).value();
  ASSERT_TRUE(dense.fill_bytes(0).is_ok());
  ops::MatmulFusion norm_only;
  norm_only.norm = norm;
  auto y_bf16 = cpu.alloc(DType::BF16, {M, N}).value();
  expect_error(ops::matmul(s, x, dense, y_bf16, norm_only), StatusCode::Unsupported, "quantized");
  EXPECT_TRUE(ops::matmul(s, x, dense, y_bf16, ops::MatmulFusion{}).is_ok());

  // Without a fusion y must keep x's dtype, on every entry point.
  expect_error(ops::matmul(s, x, w, y), StatusCode::Unsupported, "y has dtype");
  expect_error(ops::matmul(s, x, w, y, ops::MatmulFusion{}), StatusCode::Unsupported, "y has dtype");
  ops::AffineWeight aw;
  aw.bits = 4;
  aw.group_size = 64;
  aw.packed = cpu.alloc(DType::U32, {N, K * 4 / 32}).value();
  aw.scales = cpu.alloc(DType::F16, {N, K / 64}).value();
  aw.biases = cpu.alloc(DType::F16, {N, K / 64}).value();
  for (const Buffer* b : {&aw.packed, &aw.scales, &aw.biases}) ASSERT_TRUE(b->fill_bytes(0).is_ok());
  expect_error(ops::matmul_affine(s, x, aw, y), StatusCode::Unsupported, "y has dtype");
  EXPECT_TRUE(ops::matmul_affine(s, x, aw, y, f).is_ok());
  bad = f;
  bad.norm = cpu.alloc(DType::F32, {K + 1}).value();
  expect_error(ops::matmul_affine(s, x, aw, y, bad), StatusCode::InvalidArgument, "norm");
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
