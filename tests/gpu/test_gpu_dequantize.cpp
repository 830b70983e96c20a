// The CUDA row dequantizer against the CPU backend (bit-exact: the same f32 operations, one rounding to the output
// type), quantized embedding tables on CUDA, and the prefill-sized quantized matmul (W dequantized in chunks into
// the session scratch, cuBLASLt) against the float64 reference, eager, captured and in explicit-barrier mode.
#include <cstring>

#include "qmatmul_gpu_cases.h"

namespace mlxn {
namespace {

std::string dq_key(const test::QMatmulCase& c, DType to) {
  if (c.tw == DType::U32) return "affine" + std::to_string(c.bits) + "." + std::string(dtype_name(to));
  return KernelRegistry::key({c.tw, to});
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    ASSERT_EQ(a, b) << "element " << i << ": " << got[i] << " vs " << want[i];
  }
}

TEST(GpuDequantize, MatchesCpuBitExact) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::dequant_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c.w, seed);
    for (DType to : test::float_dtypes()) {
      if (!gpu.kernels().supports("dequantize", dq_key(c.w, to))) continue;  // kernel sets without this variant
      SCOPED_TRACE(detail::cat("out ", to));
      auto want = test::run_dequant(Device::cpu(), c.w, q, to, c.row0, c.rows, c.out_pad);
      auto got = test::run_dequant(gpu, c.w, q, to, c.row0, c.rows, c.out_pad);
      ASSERT_TRUE(want.status.is_ok()) << want.status.to_string();
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      expect_same_bits(got.out, want.out);
    }
  }
}

// Random bytes everywhere (scales too: infinities, NaNs, subnormals): still the CPU's bits, NaNs aside.
TEST(GpuDequantize, RandomBlocksMatchCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : test::qmatmul_formats()) {
    if (!gpu.kernels().supports("dequantize", KernelRegistry::key({t, DType::F32}))) continue;
    SCOPED_TRACE(detail::cat(t));
    const test::QMatmulCase c{t, 0, 0, DType::F16, 0, 19, 2 * dtype_info(t).block_elems, DType::F32, 0};
    test::QWeights q;
    q.blocks.resize(dtype_storage_bytes(t, c.N * c.K).value());
    std::mt19937_64 g(seed);
    for (auto& b : q.blocks) b = static_cast<uint8_t>(g());
    auto want = test::run_dequant(Device::cpu(), c, q, DType::F32, 0, c.N, 0);
    auto got = test::run_dequant(gpu, c, q, DType::F32, 0, c.N, 0);
    ASSERT_TRUE(want.status.is_ok()) << want.status.to_string();
    ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
    for (size_t i = 0; i < want.out.size(); ++i) {
      if (std::isnan(want.out[i])) {
        ASSERT_TRUE(std::isnan(got.out[i])) << "element " << i;
      } else {
        ASSERT_EQ(got.out[i], want.out[i]) << "element " << i;
      }
    }
  }
}

TEST(GpuDequantize, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType to : test::float_dtypes()) {
    for (DType tw : test::qmatmul_formats()) {
      auto w = gpu.alloc(tw, {4, 256}).value();
      ASSERT_TRUE(w.fill_bytes(0).is_ok());
      auto out = gpu.alloc(to, {4, 256}).value();
      const bool listed = gpu.kernels().supports("dequantize", KernelRegistry::key({tw, to}));
      Status st = ops::dequantize(s, w, out);
      EXPECT_EQ(st.is_ok(), listed) << tw << " " << to << ": " << st.to_string();
    }
    for (int bits : {2, 3, 4, 5, 6, 8}) {
      ops::AffineWeight aw;
      aw.bits = bits;
      aw.group_size = 64;
      aw.packed = gpu.alloc(DType::U32, {4, 256 * bits / 32}).value();
      aw.scales = gpu.alloc(DType::F16, {4, 4}).value();
      aw.biases = gpu.alloc(DType::F16, {4, 4}).value();
      for (const Buffer* b : {&aw.packed, &aw.scales, &aw.biases}) ASSERT_TRUE(b->fill_bytes(0).is_ok());
      auto out = gpu.alloc(to, {4, 256}).value();
      const bool listed =
          gpu.kernels().supports("dequantize", "affine" + std::to_string(bits) + "." + std::string(dtype_name(to)));
      Status st = ops::dequantize_affine(s, aw, out);
      EXPECT_EQ(st.is_ok(), listed) << "affine" << bits << " " << to << ": " << st.to_string();
    }
  }
  ASSERT_TRUE(s.finish().is_ok());
}

TEST(GpuDequantize, QuantizedEmbeddingMatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  std::vector<test::QMatmulCase> cases;
  for (DType t : test::qmatmul_formats())
    cases.push_back({t, 0, 0, DType::F16, 0, 37, 2 * dtype_info(t).block_elems, DType::F32, 0});
  const DType ts[] = {DType::F16, DType::BF16, DType::F32};
  for (int bits : {2, 3, 4, 5, 6, 8})
    cases.push_back({DType::U32, bits, bits == 4 ? 32 : 64, ts[bits % 3], 0, 37, 256, DType::F32, 0});
  for (const auto& c : cases) {
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c, seed);
    const auto ids = test::embedding_ids(c.N, 50, seed + 5);
    for (DType to : test::float_dtypes()) {
      const std::string op = c.tw == DType::U32 ? "dequantize" : "embedding";
      if (!gpu.kernels().supports(op, dq_key(c, to))) continue;
      SCOPED_TRACE(detail::cat("out ", to));
      auto want = test::run_qembedding(Device::cpu(), c, q, to, ids, 0.75f);
      auto got = test::run_qembedding(gpu, c, q, to, ids, 0.75f);
      ASSERT_TRUE(want.status.is_ok()) << want.status.to_string();
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      expect_same_bits(got.out, want.out);
    }
  }
}

// Bound of the prefill path: W rounded once to x's dtype in the scratch (unit roundoff 2^-8 for bf16, 2^-11 for
// f16, none for f32), x exact, f32 accumulation on the tensor cores (f32 x: an f32 GEMM; the 1e-6 term covers its
// accumulation for these K), one rounding of y. f16 W below 2^-14 loses relative precision (absolute 2^-25), folded
// into the scale term. Below the threshold the decode kernel runs: its own bound (tests/gpu/test_gpu_qmatmul.cpp).
double qmatmul_bound_err(const test::QMatmulRun& run, const test::QMatmulCase& c) {
  if (c.M < 64) {
    const double u_x = c.tx == DType::F32 ? 1.0 / 2048 : 0.0;
    return test::qmatmul_err(run, 1.0 / 2048 + 1e-6, 3.0 / 4096, u_x, test::rtol_for(c.tx));
  }
  const double u_w = c.tx == DType::BF16 ? 1.0 / 256 : c.tx == DType::F16 ? 1.0 / 2048 : 0.0;
  const double u_s = c.tx == DType::F16 ? 1.0 / 16384 / 8 : 0.0;
  return test::qmatmul_err(run, u_w + 1e-6, u_s, 0.0, test::rtol_for(c.tx));
}

TEST(GpuQPrefill, MatchesReference) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const DType xs[] = {DType::BF16, DType::F16, DType::F32};
  int i = 0;
  std::vector<test::QMatmulCase> cases;
  for (DType t : test::qmatmul_formats()) {
    const int64_t kb = dtype_info(t).block_elems;
    for (auto [M, N, K] :
         std::vector<std::array<int64_t, 3>>{{17, 37, kb}, {100, 37, kb}, {513, 129, kb}, {100, 65, 4 * kb}}) {
      cases.push_back({t, 0, 0, DType::F16, M, N, K, xs[i % 3], (i % 4 == 3) ? 8 : 0});
      ++i;
    }
  }
  const DType ts[] = {DType::F16, DType::BF16, DType::F32};
  for (int bits : {3, 4, 8})
    for (auto [M, N, K] : std::vector<std::array<int64_t, 3>>{{100, 37, 128}, {513, 33, 256}}) {
      cases.push_back({DType::U32, bits, 64, ts[i % 3], M, N, K, xs[i % 3], 0});
      ++i;
    }
  for (const auto& c : cases) {
    SCOPED_TRACE(test::describe(c));
    const std::string qkey = c.tw == DType::U32
                                 ? "affine" + std::to_string(c.bits) + "." + std::string(dtype_name(c.tx))
                                 : KernelRegistry::key({c.tw, c.tx});
    if (!gpu.kernels().supports("qmatmul", qkey) || !gpu.kernels().supports("dequantize", dq_key(c, c.tx))) continue;
    const auto q = test::make_qweights(c, seed);
    auto run = test::run_qmatmul(gpu, c, q, seed);
    ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
    EXPECT_LE(qmatmul_bound_err(run, c), 1.0);
  }
}

// More rows than one scratch chunk holds (64 MiB: 4096 rows of K = 8192 in bf16): two balanced chunks, the second
// not a multiple of 128 rows, each written at its column offset of y.
TEST(GpuQPrefill, SeveralChunks) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const test::QMatmulCase c{DType::Q4_K, 0, 0, DType::F16, 64, 4133, 8192, DType::BF16, 0};
  if (!gpu.kernels().supports("qmatmul", "q4_K.bf16") || !gpu.kernels().supports("dequantize", "q4_K.bf16"))
    GTEST_SKIP() << "kernel set without q4_K x bf16";
  const auto q = test::make_qweights(c, seed);
  auto run = test::run_qmatmul(gpu, c, q, seed);
  ASSERT_TRUE(run.status.is_ok()) << run.status.to_string();
  EXPECT_LE(qmatmul_bound_err(run, c), 1.0);
}

// Two prefill matmuls share the session scratch: captured into a graph (the scratch allocated during the capture)
// and replayed, with automatic hazards and in explicit-barrier mode without barriers (where they would otherwise
// become parallel branches), both must give the eager results.
TEST(GpuQPrefill, SharedScratchUnderCaptureAndExplicitMode) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  if (!gpu.kernels().supports("qmatmul", "q4_0.bf16") || !gpu.kernels().supports("dequantize", "q4_0.bf16"))
    GTEST_SKIP() << "kernel set without q4_0 x bf16";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t M = 100, N = 300, K = 512;
  const test::QMatmulCase c1{DType::Q4_0, 0, 0, DType::F16, M, N, K, DType::BF16, 0};
  const auto q1 = test::make_qweights(c1, seed), q2 = test::make_qweights(c1, seed + 11);
  auto w1 = test::upload_qweight(gpu, c1, q1).w, w2 = test::upload_qweight(gpu, c1, q2).w;
  auto x = test::make_buffer(gpu, DType::BF16, {M, K}, test::randn(static_cast<size_t>(M * K), seed + 1));
  // No barriers in the explicit run: the scratch alone must order the two ops.
  const auto runs = test::run_shared_scratch_pair(gpu, x, w1, x, w2, M, N);
  const auto& eager = runs.eager;
  // A race on the shared scratch would mix the two weights (or leave poison); cuBLASLt need not be bitwise
  // reproducible between streams, so compare to the eager results at bf16 resolution.
  for (const auto* r : {&runs.captured, &runs.explicit_run}) {
    ASSERT_EQ(r->first.size(), eager.first.size());
    EXPECT_LE(test::max_scaled_err(r->first, eager.first, 1e-2, 1.6e-2), 1.0);
    EXPECT_LE(test::max_scaled_err(r->second, eager.second, 1e-2, 1.6e-2), 1.0);
  }
  EXPECT_NE(eager.first, eager.second);  // two different weights
}

}  // namespace
}  // namespace mlxn
