// BERT encoders (models/src/bert*.cpp) on the CPU: tiny random checkpoints against the float64 reference in
// bert_ref.h, padding independence, head-dim padding, sentence-transformers' files, GGUF, and the error paths.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "bert_ref.h"
#include "mlxn/models/bert.h"
#include "test_util.h"

namespace mlxn {
namespace {

namespace fs = std::filesystem;
using models::Pooling;

using test::TmpDir;

std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
  return t;
}

std::unique_ptr<models::BertModel> load(const std::string& path, const models::BertOptions& o = {}) {
  auto m = models::BertModel::load(path, Device::cpu(), o);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  return m.is_ok() ? std::move(m).value() : nullptr;
}

// A batch of three sequences of different lengths (one of length 1) against the reference, each pooling mode.
// Tolerance 3e-4: the library rounds K / V to f16 from f32 values, the reference from float64 ones, so a few
// elements land one f16 step apart (measured up to ~1e-4 over many seeds; a causal or unmasked attention is
// off by O(1)).
TEST(Bert, BatchMatchesFloat64Reference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  test::bert::TinyBert tb(seed);
  tb.write_hf(dir.path / "hf");
  auto m = load((dir.path / "hf").string());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->config().n_layer, 2);
  EXPECT_EQ(m->config().pooling, Pooling::Mean);  // no modules.json: the defaults
  EXPECT_TRUE(m->config().normalize);
  const std::vector<std::vector<int32_t>> batch = {random_ids(7, tb.vocab, seed), random_ids(13, tb.vocab, seed + 1),
                                                   random_ids(1, tb.vocab, seed + 2)};
  for (auto [pooling, norm] : {std::pair{Pooling::Mean, true}, std::pair{Pooling::Mean, false},
                               std::pair{Pooling::Cls, false}, std::pair{Pooling::Cls, true}}) {
    SCOPED_TRACE(std::string(models::pooling_name(pooling)) + (norm ? " l2" : ""));
    auto got = m->embed(batch, pooling, norm);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    ASSERT_EQ(got->size(), batch.size());
    for (size_t b = 0; b < batch.size(); ++b) {
      const auto want = test::bert::reference_embedding(tb, batch[b], pooling, norm);
      ASSERT_EQ((*got)[b].size(), want.size());
      EXPECT_LT(test::rel_l2((*got)[b], want), 3e-4) << "sequence " << b;
    }
  }
}

// A sequence embeds the same alone and beside a longer one (its padding is masked out of attention and pooling),
// while one more real token changes it.
TEST(Bert, PaddingDoesNotLeakAcrossTheBatch) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  test::bert::TinyBert tb(seed);
  tb.write_hf(dir.path / "hf");
  auto m = load((dir.path / "hf").string());
  ASSERT_TRUE(m);
  const auto short_seq = random_ids(4, tb.vocab, seed), long_seq = random_ids(17, tb.vocab, seed + 1);
  std::vector<std::vector<int32_t>> alone = {short_seq}, both = {long_seq, short_seq};
  auto a = m->embed(alone, Pooling::Mean, false);
  auto b = m->embed(both, Pooling::Mean, false);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_LT(test::rel_l2((*b)[1], std::vector<float>((*a)[0])), 1e-6);
  // A different (wrong) length changes the result: the test above can fail.
  std::vector<int32_t> padded = short_seq;
  padded.push_back(0);
  std::vector<std::vector<int32_t>> p = {padded};
  auto c = m->embed(p, Pooling::Mean, false);
  ASSERT_TRUE(c.is_ok());
  EXPECT_GT(test::rel_l2((*c)[0], std::vector<float>((*a)[0])), 1e-3);
}

// Heads padded with zero rows / columns (what CUDA does for head dims below 64) give the same embeddings.
TEST(Bert, HeadDimPaddingIsExact) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  test::bert::TinyBert tb(seed, 2, 96, 3);  // head_dim 32
  tb.write_hf(dir.path / "hf");
  models::BertOptions o;
  o.pad_head_dim = 64;
  auto plain = load((dir.path / "hf").string());
  auto padded = load((dir.path / "hf").string(), o);
  ASSERT_TRUE(plain && padded);
  EXPECT_EQ(padded->weights().head_dim_padded, 64);
  EXPECT_EQ(plain->weights().head_dim_padded, 32);
  EXPECT_EQ(padded->weights().layers[0].wq.shape(), (Shape{3 * 64, 96}));
  const std::vector<std::vector<int32_t>> batch = {random_ids(9, tb.vocab, seed), random_ids(3, tb.vocab, seed + 7)};
  auto a = plain->embed(batch);
  auto b = padded->embed(batch);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_LT(test::rel_l2((*b)[i], std::vector<float>((*a)[i])), 1e-6);
    EXPECT_LT(test::rel_l2((*b)[i], test::bert::reference_embedding(tb, batch[i], Pooling::Mean, true)), 3e-4);
  }
  // A head dim the CPU has no attention kernels for (16) is padded automatically (to 32).
  TmpDir dir16;
  test::bert::TinyBert t16(seed, 1, 32, 2);
  t16.write_hf(dir16.path / "hf");
  auto m16 = load((dir16.path / "hf").string());
  ASSERT_TRUE(m16);
  EXPECT_EQ(m16->weights().head_dim_padded, 32);
  auto e16 = m16->embed(batch);
  ASSERT_TRUE(e16.is_ok()) << e16.status().to_string();
  for (size_t i = 0; i < batch.size(); ++i)
    EXPECT_LT(test::rel_l2((*e16)[i], test::bert::reference_embedding(t16, batch[i], Pooling::Mean, true)), 3e-4);
}

// The CUDA configuration (f16 activations written straight into the f16 K / V, matrices in f16, heads padded to
// 64) run by the CPU backend: the same code path as on the GPU, against the reference at f16 accuracy.
TEST(Bert, HalfActivationsPathOnCpu) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  test::bert::TinyBert tb(seed);
  tb.write_hf(dir.path / "hf");
  models::BertOptions o;
  o.act_dtype = DType::F16;
  o.pad_head_dim = 64;
  auto m = load((dir.path / "hf").string(), o);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->weights().layers[0].w_up.dtype(), DType::F16);
  const std::vector<std::vector<int32_t>> batch = {random_ids(11, tb.vocab, seed), random_ids(2, tb.vocab, seed + 1)};
  for (auto pooling : {Pooling::Mean, Pooling::Cls}) {
    auto got = m->embed(batch, pooling, true);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    for (size_t i = 0; i < batch.size(); ++i)
      EXPECT_LT(test::rel_l2((*got)[i], test::bert::reference_embedding(tb, batch[i], pooling, true)), 5e-3) << i;
  }
}

// sentence-transformers' modules.json / 1_Pooling / sentence_bert_config.json, and task-head names ("bert.").
TEST(Bert, SentenceTransformersFiles) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  test::bert::TinyBert tb(seed);
  const fs::path hf = dir.path / "st";
  tb.write_hf(hf, "bert.");
  fs::create_directories(hf / "1_Pooling");
  std::ofstream(hf / "modules.json")
      << R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},)"
      << R"({"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}])";
  std::ofstream(hf / "1_Pooling" / "config.json")
      << R"({"word_embedding_dimension":64,"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":false,)"
      << R"("pooling_mode_max_tokens":false,"pooling_mode_mean_sqrt_len_tokens":false})";
  std::ofstream(hf / "sentence_bert_config.json") << R"({"max_seq_length":10,"do_lower_case":false})";
  auto m = load(hf.string());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->config().pooling, Pooling::Cls);
  EXPECT_FALSE(m->config().normalize);  // modules.json lists no Normalize
  EXPECT_EQ(m->config().max_seq_len, 10);
  const std::vector<std::vector<int32_t>> batch = {random_ids(6, tb.vocab, seed)};
  auto got = m->embed(batch);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_LT(test::rel_l2((*got)[0], test::bert::reference_embedding(tb, batch[0], Pooling::Cls, false)), 3e-4);
  const std::vector<std::vector<int32_t>> too_long = {random_ids(11, tb.vocab, seed)};
  auto r = m->embed(too_long);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("at most 10"), std::string::npos) << r.status().to_string();

  // Max pooling is not supported: a clear error rather than a wrong embedding.
  std::ofstream(hf / "1_Pooling" / "config.json") << R"({"pooling_mode_max_tokens":true})";
  auto bad = models::BertModel::load(hf.string(), Device::cpu());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::Unsupported);
}

// llama.cpp's "bert" GGUF with the same weights gives the same embeddings; its pooling_type is honoured.
TEST(Bert, GgufMatchesReference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  test::bert::TinyBert tb(seed);
  const std::string path = (dir.path / "bert.gguf").string();
  tb.write_gguf(path, 2);
  auto m = load(path);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->config().format, models::WeightFormat::Gguf);
  EXPECT_EQ(m->config().pooling, Pooling::Cls);
  const std::vector<std::vector<int32_t>> batch = {random_ids(5, tb.vocab, seed), random_ids(8, tb.vocab, seed + 3)};
  auto got = m->embed(batch);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  for (size_t i = 0; i < batch.size(); ++i)
    EXPECT_LT(test::rel_l2((*got)[i], test::bert::reference_embedding(tb, batch[i], Pooling::Cls, true)), 3e-4);
}

TEST(Bert, ErrorPaths) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  test::bert::TinyBert tb(seed);
  tb.write_hf(dir.path / "hf");
  auto m = load((dir.path / "hf").string());
  ASSERT_TRUE(m);
  auto expect_err = [&](std::vector<std::vector<int32_t>> batch, const std::string& words) {
    auto r = m->embed(batch);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::InvalidArgument);
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().to_string();
  };
  expect_err({{1, 2}, {}}, "sequence 1 of the batch is empty");
  expect_err({{1, 50}}, "token id 50");
  expect_err({{-1}}, "token id -1");
  expect_err({random_ids(25, tb.vocab, seed)}, "at most 24");
  auto none = m->embed(std::vector<std::vector<int32_t>>{});
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());

  // A missing tensor names it; a wrong model_type is Unsupported.
  test::bert::TinyBert broken(seed);
  broken.tensors.erase("encoder.layer.1.output.dense.bias");
  broken.write_hf(dir.path / "broken");
  auto b = models::BertModel::load((dir.path / "broken").string(), Device::cpu());
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), StatusCode::NotFound);
  EXPECT_NE(b.status().message().find("encoder.layer.1.output.dense.bias"), std::string::npos);
  std::ofstream(dir.path / "broken" / "config.json") << R"({"model_type":"llama"})";
  auto c = models::BertModel::load((dir.path / "broken").string(), Device::cpu());
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::Unsupported);
  EXPECT_NEAR(models::cosine_similarity(std::vector<float>{1, 0}, std::vector<float>{1, 1}), std::sqrt(0.5), 1e-12);
  EXPECT_EQ(models::cosine_similarity(std::vector<float>{0, 0}, std::vector<float>{1, 1}), 0.0);
}

}  // namespace
}  // namespace mlxn
