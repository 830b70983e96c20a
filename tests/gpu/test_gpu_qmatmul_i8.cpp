// The int8 tensor-core matmul for 5 (9 for the shared-tile formats) <= M <= 16 (src/cuda/qgemm_i8.cuh): every GGML
// format and MLX affine against the float64 reference with the int8 kernels' error bound, rows independent of M (same x
// quantization and integer sums as the M = 1 kernel), the shared workspace under graph capture and explicit hazards,
// and dispatch at M = 8. With MLXN_TUNE_QGEMM_I8=0 these shapes run the f16 tensor-core kernel: the tests skip.
#include <cstdlib>

#include "kernels/qmatmul.h"
#include "qmatmul_gpu_cases.h"

namespace mlxn {
namespace {

bool i8_on() {
  for (const char* k : {"MLXN_TUNE_QGEMM_I8", "MLXN_TUNE_QGEMV"})
    if (const char* v = std::getenv(k); v != nullptr && std::atoi(v) == 0) return false;
  return true;
}

#define MLXN_I8_OR_SKIP()                                                       \
  if (!i8_on()) {                                                               \
    GTEST_SKIP() << "MLXN_TUNE_QGEMM_I8=0: the int8 tensor-core kernel is off"; \
  }

std::vector<test::QMatmulCase> i8_cases() {
  std::vector<test::QMatmulCase> cases;
  const DType xs[] = {DType::F32, DType::BF16, DType::F16};
  // Padding of x rows: none, 8 (rows 16-byte aligned), 3 (not).
  const int64_t pads[] = {0, 8, 3};
  int i = 0;
  for (DType t : test::qmatmul_formats()) {
    const int64_t kb = dtype_info(t).block_elems;
    // K of 7 blocks (not a multiple of 256 for the 32-element formats: a partial last step of the warps), and past
    // 4096 with a partial step: several steps per warp and split over the block's warps.
    const int64_t ks[] = {kb == 32 ? 7 * 32 : 3 * kb, (4096 / kb + 3) * kb};
    // The formats decoded through a shared tile take the kernel from M = 9 (kern::qgemm_i8_min_m).
    const int64_t m0 = kern::qgemm_i8_min_m(kern::QWeight::Ggml, t);
    for (int64_t M : {m0, m0 + 3, int64_t{13}, int64_t{16}})
      for (int64_t N : {1, 33})
        for (int64_t K : ks) {
          cases.push_back({t, 0, 0, DType::F16, M, N, K, xs[i % 3], pads[i % 3]});
          ++i;
        }
  }
  const DType ts[] = {DType::F16, DType::BF16, DType::F32};
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int group : {32, 64, 128})
      for (int64_t M : {5, 8, 13, 16}) {
        const int64_t K = group == 32 ? 7 * 32 : group == 64 ? 4160 : 384;
        const int64_t N = M % 2 ? 33 : 1;
        cases.push_back({DType::U32, bits, group, ts[i % 3], M, N, K, xs[i % 3], pads[i % 3]});
        ++i;
      }
  return cases;
}

TEST(GpuQMatmulI8, MatchesReference) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  MLXN_I8_OR_SKIP();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : i8_cases()) {
    SCOPED_TRACE(test::describe(c));
    const std::string key = c.tw == DType::U32 ? "affine" + std::to_string(c.bits) + "." + std::string(dtype_name(c.tx))
                                               : KernelRegistry::key({c.tw, c.tx});
    if (!gpu.kernels().supports("qmatmul", key)) continue;  // kernel sets without this x dtype
    test::expect_int8_matches_reference(gpu, c, seed);
  }
}

// Many rows (several blocks of 16), M = 16 and 9 (two n-tiles, the second partly padding), bf16 x.
TEST(GpuQMatmulI8, ManyRows) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  MLXN_I8_OR_SKIP();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::MXFP4})
    for (int64_t M : {9, 16}) {
      const test::QMatmulCase c{t, 0, 0, DType::F16, M, 1000, 2048, DType::BF16, 0};
      SCOPED_TRACE(test::describe(c));
      if (!gpu.kernels().supports("qmatmul", KernelRegistry::key({t, c.tx}))) continue;
      test::expect_int8_matches_reference(gpu, c, seed);
    }
}

// Row m of an M-row product equals the M = 1 product of that row alone: the same x quantization (per row and block)
// and the same integer block sums; only the f32 order of adding the scaled block sums differs (the dp4a kernel adds
// per lane, then across lanes and warps; this one per mma lane, then across the block's warps), bounded by 1e-5 of
// sum_k |x| max|w| (the int8 bound's f32 term). A row mixed with another, or a neighbour's scale, is far outside.
TEST(GpuQMatmulI8, RowsIndependentOfM) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  MLXN_I8_OR_SKIP();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  auto s = Session::create(gpu).value();
  std::vector<test::QMatmulCase> cs;
  for (DType t : test::qmatmul_formats()) {
    const int64_t kb = dtype_info(t).block_elems;
    cs.push_back({t, 0, 0, DType::F16, 11, 45, (2048 / kb + 1) * kb, DType::F32, 0});
  }
  cs.push_back({DType::U32, 4, 64, DType::BF16, 11, 45, 2112, DType::F32, 0});
  cs.push_back({DType::U32, 3, 32, DType::F16, 7, 45, 2080, DType::F32, 0});
  for (const auto& c : cs) {
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c, seed);
    const auto dw = test::upload_qweight(gpu, c, q);
    const auto xv = test::randn(static_cast<size_t>(c.M * c.K), seed + 3);
    auto mm = [&](const Buffer& x, const Buffer& y) {
      return c.tw == DType::U32 ? ops::matmul_affine(s, x, dw.aw, y) : ops::matmul(s, x, dw.w, y);
    };
    auto x = test::make_buffer(gpu, DType::F32, {c.M, c.K}, xv);
    auto y = gpu.alloc(DType::F32, {c.M, c.N}).value();
    test::poison(y);
    ASSERT_TRUE(mm(x, y).is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    const auto all = test::read_f32(y);
    for (int64_t m = 0; m < c.M; ++m) {
      const std::vector<float> row(xv.begin() + m * c.K, xv.begin() + (m + 1) * c.K);
      auto x1 = test::make_buffer(gpu, DType::F32, {1, c.K}, row);
      auto y1 = gpu.alloc(DType::F32, {1, c.N}).value();
      test::poison(y1);
      ASSERT_TRUE(mm(x1, y1).is_ok());
      ASSERT_TRUE(s.finish().is_ok());
      const auto one = test::read_f32(y1);
      double ax = 0;
      for (float v : row) ax += std::abs(static_cast<double>(v));
      for (int64_t n = 0; n < c.N; ++n) {
        double wmax = 0;
        for (int64_t k = 0; k < c.K; ++k) wmax = std::max(wmax, std::abs(static_cast<double>(q.w[n * c.K + k])));
        const double tol = 1e-5 * ax * wmax + 1e-30;
        EXPECT_NEAR(all[static_cast<size_t>(m * c.N + n)], one[static_cast<size_t>(n)], tol)
            << "m = " << m << ", n = " << n;
      }
    }
  }
}

// Two M = 8 matmuls share the session scratch (the int8 workspace): captured and replayed, and in explicit-barrier
// mode without barriers, both give the eager results bit for bit (the kernels are deterministic).
TEST(GpuQMatmulI8, SharedWorkspaceUnderCaptureAndExplicitMode) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  MLXN_I8_OR_SKIP();
  if (!gpu.kernels().supports("qmatmul", "q4_0.bf16")) GTEST_SKIP() << "kernel set without q4_0 x bf16";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t M = 8, N = 300, K = 1024;
  const test::QMatmulCase c{DType::Q4_0, 0, 0, DType::F16, M, N, K, DType::BF16, 0};
  const auto q1 = test::make_qweights(c, seed), q2 = test::make_qweights(c, seed + 11);
  auto w1 = test::upload_qweight(gpu, c, q1).w, w2 = test::upload_qweight(gpu, c, q2).w;
  auto x1 = test::make_buffer(gpu, DType::BF16, {M, K}, test::randn(static_cast<size_t>(M * K), seed + 1));
  auto x2 = test::make_buffer(gpu, DType::BF16, {M, K}, test::randn(static_cast<size_t>(M * K), seed + 2, 5.0f));
  const auto r = test::run_shared_scratch_pair(gpu, x1, w1, x2, w2, M, N);
  const auto &eager = r.eager, &captured = r.captured, &explicit_run = r.explicit_run;
  EXPECT_EQ(captured, eager);
  EXPECT_EQ(explicit_run, eager);
  EXPECT_NE(eager.first, eager.second);
}

// At M = 8 (the workspace path) every listed (format, x dtype) runs, and an unlisted one is refused.
TEST(GpuQMatmulI8, RegistryAgreesWithDispatchAtM8) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  test::expect_qmatmul_registry_agrees(gpu, 8);
}

}  // namespace
}  // namespace mlxn
