// BERT encoders on CUDA (f16 activations, head dims padded to an attention kernel's size) against the float64
// reference and the CPU backend; all-MiniLM-L6-v2 against sentence-transformers when MLXN_MINILM_DIR is set
// (ctest minilm_embeddings_gpu sets it).
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "models/bert_ref.h"
#include "models/minilm_ref.h"
#include "test_util.h"

namespace mlxn {
namespace {

namespace fs = std::filesystem;
using models::Pooling;

std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
  return t;
}

struct Dims {
  int64_t d, heads;  // head dims 32 (padded on CUDA, as MiniLM's) and 64 (a kernel size as it is)
};

class GpuBert : public ::testing::TestWithParam<Dims> {};

TEST_P(GpuBert, MatchesReferenceAndCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(dev);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  const fs::path dir = fs::temp_directory_path() / ("mlxn_gpu_bert_" + std::to_string(seed));
  test::bert::TinyBert tb(seed, 2, GetParam().d, GetParam().heads);
  tb.write_hf(dir);
  auto gpu = models::BertModel::load(dir.string(), dev);
  auto cpu = models::BertModel::load(dir.string(), Device::cpu());
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  EXPECT_EQ((*gpu)->act_dtype(), DType::F16);
  EXPECT_GE((*gpu)->weights().head_dim_padded, 64);
  const std::vector<std::vector<int32_t>> batch = {random_ids(19, tb.vocab, seed), random_ids(5, tb.vocab, seed + 1),
                                                   random_ids(1, tb.vocab, seed + 2),
                                                   random_ids(24, tb.vocab, seed + 3)};
  for (auto [pooling, norm] : {std::pair{Pooling::Mean, true}, std::pair{Pooling::Cls, false}}) {
    auto g = (*gpu)->embed(batch, pooling, norm);
    auto c = (*cpu)->embed(batch, pooling, norm);
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    for (size_t i = 0; i < batch.size(); ++i) {
      // f16 matmul inputs and attention: about 1e-3 relative per layer.
      EXPECT_LT(test::rel_l2((*g)[i], test::bert::reference_embedding(tb, batch[i], pooling, norm)), 1e-2) << i;
      EXPECT_LT(test::rel_l2((*g)[i], (*c)[i]), 1e-2) << i;
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

INSTANTIATE_TEST_SUITE_P(Tiny, GpuBert, ::testing::Values(Dims{64, 2}, Dims{128, 2}),
                         [](const ::testing::TestParamInfo<Dims>& i) {
                           // A stream: GCC 12 flags `const char* + std::string&&` with a false -Wrestrict.
                           std::ostringstream n;
                           n << "d" << i.param.d << "_h" << i.param.heads;
                           return n.str();
                         });

TEST(GpuBertMiniLM, MatchesSentenceTransformers) {
  MLXN_CUDA_DEVICE_OR_SKIP(dev);
  test::minilm::check_model(dev, 0.9999, 1e-3);  // the f16 path on the CPU: 0.9999997, 1.2e-4
}

}  // namespace
}  // namespace mlxn
