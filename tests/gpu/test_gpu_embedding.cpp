// Embedding lookup on CUDA against the CPU backend (float tables, misaligned widths, out-of-range ids), Q8_K tables
// returning Unsupported, and the registry agreeing with dispatch.
#include "embedding_cases.h"

namespace mlxn {
namespace {

TEST(GpuEmbedding, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType tt : test::float_dtypes())
    for (DType to : test::float_dtypes())
      for (auto [vocab, dim, n] :
           std::vector<std::array<int64_t, 3>>{{1000, 4096, 33}, {50, 33, 7}, {3, 8, 1}, {20, 1, 5}}) {
        SCOPED_TRACE(detail::cat(tt, "->", to, " ", vocab, "x", dim, " n=", n));
        auto c = test::run_embedding(Device::cpu(), tt, to, vocab, dim, n, 8.0f, seed);
        auto g = test::run_embedding(gpu, tt, to, vocab, dim, n, 8.0f, seed);
        ASSERT_TRUE(g.status.is_ok()) << g.status.to_string();
        EXPECT_EQ(g.out, c.out);  // one f32 multiply and one rounding on both
      }
}

// Block-type tables of weight formats run through the row dequantizer (tests/gpu/test_gpu_dequantize.cpp compares
// them with the CPU); Q8_K, an activation format without a CUDA decoder, is Unsupported.
TEST(GpuEmbedding, Q8KTablesUnsupported) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  auto table = gpu.alloc(DType::Q8_K, {4, 256}).value();
  auto ids = gpu.alloc(DType::I32, {2}).value();
  auto out = gpu.alloc(DType::F32, {2, 256}).value();
  EXPECT_EQ(ops::embedding(s, table, ids, out).code(), StatusCode::Unsupported);
}

TEST(GpuEmbedding, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  auto ids = gpu.alloc(DType::I32, {2}).value();
  ASSERT_TRUE(ids.fill_bytes(0).is_ok());
  for (DType tt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_K, DType::MXFP4, DType::Q8_K})
    for (DType to : test::float_dtypes()) {
      auto table = gpu.alloc(tt, {4, 256}).value();
      ASSERT_TRUE(table.fill_bytes(0).is_ok());
      auto out = gpu.alloc(to, {2, 256}).value();
      const bool listed = gpu.kernels().supports("embedding", KernelRegistry::key({tt, to}));
      Status st = ops::embedding(s, table, ids, out);
      EXPECT_EQ(st.is_ok(), listed) << tt << " " << to << ": " << st.to_string();
    }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
