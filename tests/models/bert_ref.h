// Tiny random BERT checkpoints (a Hugging Face safetensors folder and the same weights as a llama.cpp "bert" GGUF)
// and an independent float64 reference of the encoder, written from the published definition (Hugging Face
// BertModel + sentence-transformers Pooling / Normalize), not from the library's code. The only rounding it models
// is the f16 storage of K and V that the library's attention cache applies.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mlxn/core/half.h"
#include "mlxn/io/gguf_writer.h"
#include "mlxn/models/bert.h"

namespace mlxn::test::bert {

struct TinyBert {
  int64_t n_layer = 2, d = 64, n_head = 2, n_ff = 128, vocab = 50, n_pos = 24, n_type = 2;
  float eps = 1e-12f;
  std::map<std::string, std::pair<Shape, std::vector<float>>> tensors;  // HF names

  int64_t head_dim() const { return d / n_head; }

  explicit TinyBert(uint64_t seed, int64_t layers = 2, int64_t dim = 64, int64_t heads = 2) {
    n_layer = layers;
    d = dim;
    n_head = heads;
    n_ff = 2 * dim;
    std::mt19937_64 g(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto rnd = [&](const std::string& n, Shape s, float scale, float mean = 0.0f) {
      std::vector<float> v(static_cast<size_t>(s.numel()));
      for (auto& x : v) x = mean + scale * nd(g);
      tensors[n] = {s, std::move(v)};
    };
    const float ws = 1.0f / std::sqrt(static_cast<float>(d));
    rnd("embeddings.word_embeddings.weight", Shape{vocab, d}, 0.5f);
    rnd("embeddings.position_embeddings.weight", Shape{n_pos, d}, 0.5f);
    rnd("embeddings.token_type_embeddings.weight", Shape{n_type, d}, 0.5f);
    rnd("embeddings.LayerNorm.weight", Shape{d}, 0.1f, 1.0f);
    rnd("embeddings.LayerNorm.bias", Shape{d}, 0.1f);
    for (int64_t il = 0; il < n_layer; ++il) {
      const std::string l = "encoder.layer." + std::to_string(il) + ".";
      for (const char* m :
           {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
        rnd(l + m + ".weight", Shape{d, d}, ws);
        rnd(l + m + ".bias", Shape{d}, 0.1f);
      }
      rnd(l + "attention.output.LayerNorm.weight", Shape{d}, 0.1f, 1.0f);
      rnd(l + "attention.output.LayerNorm.bias", Shape{d}, 0.1f);
      rnd(l + "intermediate.dense.weight", Shape{n_ff, d}, ws);
      rnd(l + "intermediate.dense.bias", Shape{n_ff}, 0.1f);
      rnd(l + "output.dense.weight", Shape{d, n_ff}, 1.0f / std::sqrt(static_cast<float>(n_ff)));
      rnd(l + "output.dense.bias", Shape{d}, 0.1f);
      rnd(l + "output.LayerNorm.weight", Shape{d}, 0.1f, 1.0f);
      rnd(l + "output.LayerNorm.bias", Shape{d}, 0.1f);
    }
  }

  const std::vector<float>& t(const std::string& n) const { return tensors.at(n).second; }

  std::string config_json() const {
    std::ostringstream js;
    js << "{\"architectures\":[\"BertModel\"],\"model_type\":\"bert\",\"hidden_act\":\"gelu\",\"hidden_size\":" << d
       << ",\"intermediate_size\":" << n_ff << ",\"num_attention_heads\":" << n_head
       << ",\"num_hidden_layers\":" << n_layer << ",\"vocab_size\":" << vocab
       << ",\"max_position_embeddings\":" << n_pos << ",\"type_vocab_size\":" << n_type
       << ",\"layer_norm_eps\":1e-12,\"pad_token_id\":0}";
    return js.str();
  }

  // config.json + model.safetensors (f32), names optionally prefixed (task-head checkpoints use "bert.").
  void write_hf(const std::filesystem::path& dir, const std::string& prefix = "") const {
    std::filesystem::create_directories(dir);
    std::ostringstream hs;
    hs << "{";
    uint64_t off = 0;
    bool first = true;
    for (const auto& [name, t] : tensors) {
      hs << (first ? "" : ",") << "\"" << prefix << name << "\":{\"dtype\":\"F32\",\"shape\":[";
      for (int i = 0; i < t.first.rank(); ++i) hs << (i ? "," : "") << t.first[i];
      const uint64_t n = t.second.size() * 4;
      hs << "],\"data_offsets\":[" << off << "," << off + n << "]}";
      off += n;
      first = false;
    }
    hs << "}";
    std::string header = hs.str();
    while (header.size() % 8) header += ' ';
    std::ofstream f(dir / "model.safetensors", std::ios::binary);
    const uint64_t hl = header.size();
    f.write(reinterpret_cast<const char*>(&hl), 8);
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& [name, t] : tensors)
      f.write(reinterpret_cast<const char*>(t.second.data()), static_cast<std::streamsize>(t.second.size() * 4));
    std::ofstream(dir / "config.json") << config_json();
  }

  // The same weights under llama.cpp's names and metadata (f32 tensors, ggml type 0).
  void write_gguf(const std::string& path, uint32_t pooling_type) const {
    io::GgufWriter w;
    w.set_string("general.architecture", "bert");
    w.set_u32("bert.block_count", static_cast<uint32_t>(n_layer));
    w.set_u32("bert.embedding_length", static_cast<uint32_t>(d));
    w.set_u32("bert.feed_forward_length", static_cast<uint32_t>(n_ff));
    w.set_u32("bert.attention.head_count", static_cast<uint32_t>(n_head));
    w.set_u32("bert.context_length", static_cast<uint32_t>(n_pos));
    w.set_f32("bert.attention.layer_norm_epsilon", eps);
    w.set_bool("bert.attention.causal", false);
    w.set_u32("bert.pooling_type", pooling_type);
    w.set_u32("tokenizer.ggml.token_type_count", static_cast<uint32_t>(n_type));
    auto add = [&](const std::string& gguf, const std::string& hf) {
      const auto& [shape, v] = tensors.at(hf);
      std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
      EXPECT_TRUE(w.add_tensor(gguf, 0, shape, bytes).is_ok());
    };
    add("token_embd.weight", "embeddings.word_embeddings.weight");
    add("position_embd.weight", "embeddings.position_embeddings.weight");
    add("token_types.weight", "embeddings.token_type_embeddings.weight");
    add("token_embd_norm.weight", "embeddings.LayerNorm.weight");
    add("token_embd_norm.bias", "embeddings.LayerNorm.bias");
    const std::vector<std::pair<std::string, std::string>> parts = {{"attn_q", "attention.self.query"},
                                                                    {"attn_k", "attention.self.key"},
                                                                    {"attn_v", "attention.self.value"},
                                                                    {"attn_output", "attention.output.dense"},
                                                                    {"attn_output_norm", "attention.output.LayerNorm"},
                                                                    {"ffn_up", "intermediate.dense"},
                                                                    {"ffn_down", "output.dense"},
                                                                    {"layer_output_norm", "output.LayerNorm"}};
    for (int64_t il = 0; il < n_layer; ++il)
      for (const auto& [g, h] : parts)
        for (const char* s : {".weight", ".bias"})
          add("blk." + std::to_string(il) + "." + g + s, "encoder.layer." + std::to_string(il) + "." + h + s);
    EXPECT_TRUE(w.write(path).is_ok());
  }
};

// Float64 BertModel forward + pooling for one sequence (batching cannot change it: padding is invisible).
inline std::vector<double> reference_embedding(const TinyBert& m, const std::vector<int32_t>& ids,
                                               models::Pooling pooling, bool normalize, bool kv_f16 = true) {
  const int64_t T = static_cast<int64_t>(ids.size()), d = m.d, H = m.n_head, D = m.head_dim(), F = m.n_ff;
  using Mat = std::vector<std::vector<double>>;
  auto layer_norm = [&](std::vector<double>& x, const std::vector<float>& w, const std::vector<float>& b) {
    double mean = 0, var = 0;
    for (double e : x) mean += e;
    mean /= static_cast<double>(d);
    for (double e : x) var += (e - mean) * (e - mean);
    var /= static_cast<double>(d);
    const double r = 1.0 / std::sqrt(var + m.eps);
    for (int64_t i = 0; i < d; ++i) x[i] = (x[i] - mean) * r * w[i] + b[i];
  };
  auto linear = [](const std::vector<double>& x, const std::vector<float>& w, const std::vector<float>& b, int64_t n) {
    const size_t K = x.size();
    std::vector<double> y(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) {
      double s = b[static_cast<size_t>(r)];
      for (size_t k = 0; k < K; ++k) s += static_cast<double>(w[static_cast<size_t>(r) * K + k]) * x[k];
      y[static_cast<size_t>(r)] = s;
    }
    return y;
  };
  const auto& E = m.t("embeddings.word_embeddings.weight");
  const auto& P = m.t("embeddings.position_embeddings.weight");
  const auto& Ty = m.t("embeddings.token_type_embeddings.weight");
  Mat x(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(d)));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < d; ++i)
      x[t][i] = static_cast<double>(E[ids[t] * d + i]) + P[t * d + i] + Ty[i];  // token type 0
    layer_norm(x[t], m.t("embeddings.LayerNorm.weight"), m.t("embeddings.LayerNorm.bias"));
  }
  for (int64_t il = 0; il < m.n_layer; ++il) {
    const std::string l = "encoder.layer." + std::to_string(il) + ".";
    auto W = [&](const std::string& n) -> const std::vector<float>& { return m.t(l + n + ".weight"); };
    auto Bv = [&](const std::string& n) -> const std::vector<float>& { return m.t(l + n + ".bias"); };
    Mat q(T), k(T), v(T);
    for (int64_t t = 0; t < T; ++t) {
      q[t] = linear(x[t], W("attention.self.query"), Bv("attention.self.query"), d);
      k[t] = linear(x[t], W("attention.self.key"), Bv("attention.self.key"), d);
      v[t] = linear(x[t], W("attention.self.value"), Bv("attention.self.value"), d);
      if (kv_f16) {
        for (auto& e : k[t]) e = f16_to_f32(f32_to_f16(static_cast<float>(e)));
        for (auto& e : v[t]) e = f16_to_f32(f32_to_f16(static_cast<float>(e)));
      }
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    Mat a(T, std::vector<double>(static_cast<size_t>(d), 0.0));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        std::vector<double> s(static_cast<size_t>(T));
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < T; ++j) {  // bidirectional: every token of the sequence
          double dot = 0;
          for (int64_t e = 0; e < D; ++e) dot += q[t][h * D + e] * k[j][h * D + e];
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j < T; ++j)
          for (int64_t e = 0; e < D; ++e) a[t][h * D + e] += s[j] / sum * v[j][h * D + e];
      }
    for (int64_t t = 0; t < T; ++t) {
      auto o = linear(a[t], W("attention.output.dense"), Bv("attention.output.dense"), d);
      for (int64_t i = 0; i < d; ++i) x[t][i] += o[i];
      layer_norm(x[t], W("attention.output.LayerNorm"), Bv("attention.output.LayerNorm"));
      auto u = linear(x[t], W("intermediate.dense"), Bv("intermediate.dense"), F);
      for (auto& e : u) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
      auto y = linear(u, W("output.dense"), Bv("output.dense"), d);
      for (int64_t i = 0; i < d; ++i) x[t][i] += y[i];
      layer_norm(x[t], W("output.LayerNorm"), Bv("output.LayerNorm"));
    }
  }
  std::vector<double> out(static_cast<size_t>(d), 0.0);
  if (pooling == models::Pooling::Cls) {
    out = x[0];
  } else {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < d; ++i) out[i] += x[t][i] / static_cast<double>(T);
  }
  if (normalize) {
    double n = 0;
    for (double e : out) n += e * e;
    n = std::max(std::sqrt(n), 1e-12);
    for (auto& e : out) e /= n;
  }
  return out;
}

}  // namespace mlxn::test::bert
