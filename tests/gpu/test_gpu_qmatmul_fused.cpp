// The fused quantized matmul on CUDA (RMSNorm weight and row scale folded into the int8 decode kernel's x
// quantization, residual added before the store) against the float64 reference of qmatmul_fused_cases.h with the
// int8 kernel's error bound; against the CPU op; its shape limits; and graph replay of the in-place form.
#include "qmatmul_fused_cases.h"

namespace mlxn {
namespace {

using test::FusedResidual;

// Whether the build has the case's qmatmul variant (MLXN_KERNEL_SET=ci builds f32 x only): cases without one are
// skipped, as the other GPU tests skip variants a kernel set leaves out.
bool built(const Device& gpu, const test::FusedCase& c) {
  const std::string key = c.q.tw == DType::U32
                              ? "affine" + std::to_string(c.q.bits) + "." + std::string(dtype_name(c.q.tx))
                              : KernelRegistry::key({c.q.tw, c.q.tx});
  return gpu.kernels().supports("qmatmul", key);
}


// Ks of the decode kernel's paths (steps of 1024 columns): 768, one partial step (x quantized four threads per block
// at every M <= 4, and one warp per row pair: KS = 1); 4096 + 256, five steps, the last a quarter (the warps of a row
// pair split K: the partial sums path); 9728 (9984 for 256-element blocks), ten steps ending in a partial one, which
// only M <= 3 can fuse (M * 10 > 32 steps at M = 4, so M = 3 stands in); 8192 at M = 4, the 32-step limit.
struct KShape {
  int64_t K;
  std::vector<int64_t> Ms;
};
std::vector<KShape> k_shapes(const test::FusedWeight& w) {
  const int64_t long_k = w.block() == 256 ? 9984 : 9728;
  return {{768, {1, 2, 4}}, {4096 + 256, {1, 2, 4}}, {long_k, {1, 2, 3}}, {8192, {4}}};
}

TEST(GpuQMatmulFused, MatchesInt8Bound) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const DType norm_types[] = {DType::F32, DType::BF16, DType::F16};
  int i = 0, ran = 0;
  for (const auto& w : test::fused_weights())
    for (const auto& [K, Ms] : k_shapes(w))
      for (int64_t N : {77, 1}) {
        if (K == 8192 && N == 1) continue;
        ++i;
        std::vector<test::FusedCase> cases;
        // The decode step's shape: bf16 activations normalised into an f32 residual stream, in place. The norm
        // weight's dtype rotates; f16 carries Gemma's offset of 1.
        const DType tn = norm_types[i % 3];
        const float offset = tn == DType::F16 ? 1.0f : 0.0f;
        for (int64_t M : Ms)
          cases.push_back(test::fused_case(w, M, N, K, DType::BF16, DType::F32, tn, offset, FusedResidual::InPlace));
        const int64_t M = Ms[static_cast<size_t>(i) % Ms.size()];
        if (K != 8192) {
          // The norm alone, all f32; the residual alone from a buffer of its own, all f16.
          cases.push_back(test::fused_case(w, M, N, K, DType::F32, DType::F32, DType::BF16, 0.0f, FusedResidual::None));
          cases.push_back(
              test::fused_case(w, M, N, K, DType::F16, DType::F16, std::nullopt, 0.0f, FusedResidual::Separate));
        }
        if (K == 768 && N == 77) {
          // x so small that eps is half of mean(x^2), into a bf16 y in place.
          auto tiny = test::fused_case(w, M, N, K, DType::BF16, DType::BF16, DType::F32, 0.0f, FusedResidual::InPlace);
          tiny.x_scale = 1e-3f;
          tiny.eps = 5e-7f;
          cases.push_back(tiny);
        }
        const auto q = test::make_qweights(cases[0].q, seed + static_cast<uint64_t>(i));
        for (const auto& c : cases) {
          if (!built(gpu, c)) continue;
          ++ran;
          SCOPED_TRACE(test::describe(c));
          ASSERT_TRUE(ops::matmul_fuses(gpu, c.q.M, c.q.K));
          const auto d = test::make_fused_data(c, q, seed + static_cast<uint64_t>(i));
          const auto run = test::run_fused(gpu, c, q, d);
          ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
          EXPECT_LE(test::fused_err(run.y, c, d, true), 1.0);
        }
      }
  if (ran == 0) GTEST_SKIP() << "no qmatmul variant of the cases is built";
}

// The CUDA kernel and the CPU op on the same inputs: each within its bound of the reference, so within the sum of
// the two bounds of each other.
// The gated form at M = 1 (the decode step's gate|up projection with the SwiGLU in the store) for every GGML format,
// with the norm, at a K of one partial step and one of several; M = 2 is Unsupported on CUDA.
TEST(GpuQMatmulFused, GatedMatchesInt8Bound) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : test::qmatmul_formats()) {
    const test::FusedWeight fw{t, 0, 0, DType::F16};
    for (int64_t K : {int64_t{768}, int64_t{4096 + 256}}) {
      const auto c = test::fused_case(fw, 1, 2 * 77, K, DType::BF16, DType::BF16, DType::F32, 0.0f,
                                      FusedResidual::None);
      if (built(gpu, c)) test::expect_glu_matches(gpu, c, seed, true);
    }
  }
  const Status two = test::glu_call(gpu, 2, 8, 4);
  EXPECT_EQ(two.code(), StatusCode::Unsupported) << two.to_string();
}

TEST(GpuQMatmulFused, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const auto c = test::fused_case(test::FusedWeight{DType::Q4_K, 0, 0, DType::F16}, 3, 77, 4096 + 256, DType::F32,
                                  DType::BF16, DType::F16, 1.0f, FusedResidual::Separate);
  SCOPED_TRACE(test::describe(c));
  if (!built(gpu, c)) GTEST_SKIP() << "qmatmul variant not built";
  const auto q = test::make_qweights(c.q, seed);
  const auto d = test::make_fused_data(c, q, seed);
  const auto on_gpu = test::run_fused(gpu, c, q, d);
  ASSERT_TRUE(on_gpu.status.is_ok()) << on_gpu.status.to_string();
  const auto on_cpu = test::run_fused(Device::cpu(), c, q, d);
  ASSERT_TRUE(on_cpu.status.is_ok()) << on_cpu.status.to_string();
  ASSERT_EQ(on_gpu.y.size(), on_cpu.y.size());
  for (size_t j = 0; j < on_gpu.y.size(); ++j) {
    const double tol = d.int8_err[j] + d.exact_err[j] + 2 * test::rtol_for(c.ty) * std::abs(test::fused_ref(d, j));
    EXPECT_LE(std::abs(static_cast<double>(on_gpu.y[j]) - on_cpu.y[j]), tol) << "output " << j;
  }
}

// Outside the decode kernel's shared-memory budget (M <= 4, M * ceil(K / 1024) <= 32) the fused forms fail with
// Unsupported, before anything runs, and the session stays usable.
TEST(GpuQMatmulFused, UnsupportedShapesFailCleanly) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  EXPECT_FALSE(ops::matmul_fuses(gpu, 5, 4096));
  EXPECT_TRUE(ops::matmul_fuses(gpu, 4, 8192));
  EXPECT_FALSE(ops::matmul_fuses(gpu, 4, 8193));
  EXPECT_TRUE(ops::matmul_fuses(gpu, 1, 32768));
  EXPECT_FALSE(ops::matmul_fuses(gpu, 1, 32769));

  auto s = Session::create(gpu).value();
  constexpr int64_t N = 16;
  auto fused_at = [&](int64_t M, int64_t K, bool norm, bool residual) {
    auto x = gpu.alloc(DType::F32, {M, K}).value();
    auto w = gpu.alloc(DType::Q8_0, {N, K}).value();
    auto y = gpu.alloc(DType::F32, {M, N}).value();
    for (const Buffer* b : {&x, &w, &y}) EXPECT_TRUE(b->fill_bytes(0).is_ok());
    ops::MatmulFusion f;
    if (norm) {
      f.norm = gpu.alloc(DType::F32, {K}).value();
      EXPECT_TRUE(f.norm.fill_bytes(0).is_ok());
    }
    if (residual) f.residual = y;
    return ops::matmul(s, x, w, y, f);
  };
  for (auto [norm, residual] : {std::pair{true, false}, std::pair{false, true}, std::pair{true, true}}) {
    SCOPED_TRACE(detail::cat("norm ", norm, " residual ", residual));
    const Status m5 = fused_at(5, 4096, norm, residual);
    EXPECT_EQ(m5.code(), StatusCode::Unsupported) << m5.to_string();
    EXPECT_NE(m5.message().find("matmul_fuses"), std::string::npos) << m5.message();
    // 33 steps of x at M = 4 (K = 8224, a whole number of Q8_0 blocks).
    const Status long_k = fused_at(4, 8224, norm, residual);
    EXPECT_EQ(long_k.code(), StatusCode::Unsupported) << long_k.to_string();
    EXPECT_TRUE(fused_at(4, 8192, norm, residual).is_ok());
  }
  ASSERT_TRUE(s.finish().is_ok());
}

// Captured once and replayed twice, the in-place form adds its product twice: y = r + 2 g x' W^T. The second replay
// reads the first one's y as its residual (the kernel's early weight reads must not move the residual's read).
TEST(GpuQMatmulFused, GraphReplayAccumulatesResidual) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (int64_t M : {1, 4}) {
    const auto c = test::fused_case(test::FusedWeight{DType::Q6_K, 0, 0, DType::F16}, M, 77, 4096 + 256, DType::F32,
                                    DType::F32, DType::BF16, 0.0f, FusedResidual::InPlace);
    SCOPED_TRACE(test::describe(c));
    if (!built(gpu, c)) GTEST_SKIP() << "qmatmul variant not built";
    const auto q = test::make_qweights(c.q, seed);
    const auto d = test::make_fused_data(c, q, seed);
    const auto b = test::make_fused_buffers(gpu, c, q, d);
    auto s = Session::create(gpu).value();
    ASSERT_TRUE(s.begin_capture().is_ok());
    ASSERT_TRUE(test::record_fused(s, c, b).is_ok());
    auto g = s.end_capture();
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    ASSERT_TRUE(g->replay().is_ok());
    ASSERT_TRUE(g->replay().is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    EXPECT_LE(test::fused_err(test::read_f32(b.y), c, d, true, 2), 1.0);
  }
}

}  // namespace
}  // namespace mlxn
