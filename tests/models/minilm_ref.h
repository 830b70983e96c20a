// The sentence-transformers reference of all-MiniLM-L6-v2 (tests/models/oracle/minilm_reference.txt, produced by
// minilm_reference.py beside it) and the checks the CPU and CUDA tests share. The model folder comes from
// scripts/fetch_test_models.sh; its path is passed in MLXN_MINILM_DIR (the tests skip without it).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "mlxn/models/bert.h"
#include "tokenizer/wordpiece.h"

namespace mlxn::test::minilm {

struct Reference {
  std::vector<std::string> sentences;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<double>> vecs;
  std::vector<std::vector<double>> cos;
  std::vector<std::pair<std::string, std::vector<int32_t>>> tok;  // extra tokenizer strings
};

inline std::string unhex(const std::string& h) {
  std::string s;
  for (size_t i = 0; i + 1 < h.size(); i += 2) s += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return s;
}

inline Reference load_reference() {
  Reference r;
  const auto path = std::filesystem::path(__FILE__).parent_path() / "oracle" / "minilm_reference.txt";
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    auto grow = [](auto& v, size_t i) {
      if (v.size() <= i) v.resize(i + 1);
    };
    if (kind == "sentence") {
      size_t i;
      std::string h;
      ls >> i >> h;
      grow(r.sentences, i);
      r.sentences[i] = unhex(h);
    } else if (kind == "ids" || kind == "vec") {
      size_t i;
      ls >> i;
      if (kind == "ids") {
        grow(r.ids, i);
        for (int32_t x; ls >> x;) r.ids[i].push_back(x);
      } else {
        grow(r.vecs, i);
        for (double x; ls >> x;) r.vecs[i].push_back(x);
      }
    } else if (kind == "cos") {
      size_t i, j;
      double v;
      ls >> i >> j >> v;
      grow(r.cos, i);
      grow(r.cos[i], j);
      r.cos[i][j] = v;
    } else if (kind == "tok") {
      std::string h;
      ls >> h;
      std::vector<int32_t> ids;
      for (int32_t x; ls >> x;) ids.push_back(x);
      r.tok.emplace_back(unhex(h), std::move(ids));
    }
  }
  return r;
}

// The model folder, or "" (the caller skips).
inline std::string model_dir() {
  const char* d = std::getenv("MLXN_MINILM_DIR");
  if (d == nullptr || !std::filesystem::exists(std::filesystem::path(d) / "model.safetensors")) return {};
  return d;
}

// Token ids against Hugging Face's, then embeddings: cosine >= min_cos with each reference vector, every row of
// the similarity matrix in the reference's order, each similarity within cos_tol.
inline void check_model(const Device& dev, double min_cos, double cos_tol) {
  const std::string dir = model_dir();
  if (dir.empty())
    GTEST_SKIP() << "MLXN_MINILM_DIR is not set to an all-MiniLM-L6-v2 folder "
                    "(scripts/fetch_test_models.sh fetches one; ctest's minilm_embeddings sets it)";
  const Reference ref = load_reference();
  ASSERT_EQ(ref.sentences.size(), 6u);
  ASSERT_EQ(ref.vecs.size(), 6u);
  auto tok = tok::WordPieceTokenizer::from_hf_dir(dir);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  std::vector<std::vector<int32_t>> batch;
  for (size_t i = 0; i < ref.sentences.size(); ++i) {
    batch.push_back((*tok)->encode(ref.sentences[i]));
    EXPECT_EQ(batch.back(), ref.ids[i]) << ref.sentences[i];
  }
  for (const auto& [text, ids] : ref.tok) EXPECT_EQ((*tok)->encode(text), ids) << text;

  auto model = models::BertModel::load(dir, dev);
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  EXPECT_EQ((*model)->config().pooling, models::Pooling::Mean);
  EXPECT_TRUE((*model)->config().normalize);
  EXPECT_EQ((*model)->config().max_seq_len, 256);
  auto emb = (*model)->embed(batch);
  ASSERT_TRUE(emb.is_ok()) << emb.status().to_string();
  const size_t n = batch.size();
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> r((ref.vecs[i]).begin(), ref.vecs[i].end());
    const double c = models::cosine_similarity((*emb)[i], r);
    EXPECT_GE(c, min_cos) << "sentence " << i << ": " << ref.sentences[i];
    double norm = 0;
    for (float x : (*emb)[i]) norm += static_cast<double>(x) * x;
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
  }
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> ours(n);
    for (size_t j = 0; j < n; ++j) {
      ours[j] = models::cosine_similarity((*emb)[i], (*emb)[j]);
      EXPECT_NEAR(ours[j], ref.cos[i][j], cos_tol) << i << " vs " << j;
    }
    std::vector<size_t> a(n), b(n);
    std::iota(a.begin(), a.end(), 0);
    std::iota(b.begin(), b.end(), 0);
    std::stable_sort(a.begin(), a.end(), [&](size_t x, size_t y) { return ours[x] > ours[y]; });
    std::stable_sort(b.begin(), b.end(), [&](size_t x, size_t y) { return ref.cos[i][x] > ref.cos[i][y]; });
    EXPECT_EQ(a, b) << "similarity ordering of sentence " << i;
  }
  // The published behaviour the sentence pairs are chosen for: eating food is closer to eating bread than to
  // riding a horse, and both to each other more than to the violin.
  EXPECT_GT(models::cosine_similarity((*emb)[0], (*emb)[1]), models::cosine_similarity((*emb)[0], (*emb)[3]));
  EXPECT_GT(models::cosine_similarity((*emb)[0], (*emb)[3]), models::cosine_similarity((*emb)[0], (*emb)[4]));
}

}  // namespace mlxn::test::minilm
