// Tiny random Hugging Face-style decoder checkpoints (llama, qwen2, qwen3, gemma3) written twice: MLX affine-quantized
// by the library's quant::affine_quantize (packed u32 weight + f16 scales + biases, "quantization" in config.json,
// the layout mlx_lm saves) and as a dense f32 checkpoint holding exactly the dequantized matrices. The model tests
// check that both give the same logits.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mlxn/core/half.h"
#include "mlxn/models/synth.h"
#include "mlxn/quant/affine.h"

namespace mlxn::test::mlxq {

struct RawTensor {
  std::string name, dtype;  // safetensors dtype name
  Shape shape;
  std::vector<uint8_t> bytes;
};

inline void write_safetensors(const std::filesystem::path& path, const std::vector<RawTensor>& ts) {
  std::ostringstream hs;
  hs << "{";
  uint64_t off = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    hs << (i ? "," : "") << "\"" << ts[i].name << "\":{\"dtype\":\"" << ts[i].dtype << "\",\"shape\":[";
    for (int d = 0; d < ts[i].shape.rank(); ++d) hs << (d ? "," : "") << ts[i].shape[d];
    hs << "],\"data_offsets\":[" << off << "," << off + ts[i].bytes.size() << "]}";
    off += ts[i].bytes.size();
  }
  hs << "}";
  std::string header = hs.str();
  while (header.size() % 8) header += ' ';
  std::ofstream f(path, std::ios::binary);
  const uint64_t hl = header.size();
  f.write(reinterpret_cast<const char*>(&hl), 8);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& t : ts)
    f.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
}

inline RawTensor f32_tensor(const std::string& name, const Shape& shape, const std::vector<float>& v) {
  RawTensor t{name, "F32", shape, std::vector<uint8_t>(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

inline std::string config_json(const models::ModelConfig& c, const std::string& quant) {
  const bool gemma = c.arch == models::Arch::Gemma3;
  std::ostringstream js;
  js << "{\"model_type\":\"" << (gemma ? "gemma3_text" : std::string(models::arch_name(c.arch))) << "\""
     << ",\"num_hidden_layers\":" << c.n_layer << ",\"hidden_size\":" << c.n_embd << ",\"intermediate_size\":" << c.n_ff
     << ",\"num_attention_heads\":" << c.n_head << ",\"num_key_value_heads\":" << c.n_head_kv
     << ",\"head_dim\":" << c.head_dim << ",\"vocab_size\":" << c.n_vocab << ",\"rms_norm_eps\":" << c.rms_eps
     << ",\"rope_theta\":" << c.rope_base << ",\"tie_word_embeddings\":" << (c.tied_embeddings ? "true" : "false")
     << ",\"max_position_embeddings\":" << c.n_ctx_train;
  if (gemma)
    js << ",\"sliding_window\":" << c.sliding_window << ",\"query_pre_attn_scalar\":" << c.head_dim
       << ",\"rope_local_base_freq\":" << c.rope_base_local;
  if (!quant.empty()) js << ",\"quantization\":" << quant;
  js << "}";
  return js.str();
}

// Writes <dir>/mlx (quantized) and <dir>/dense (dequantized f32) for the tiny preset of `arch` (RoPE scaling
// dropped: the test is about the weights). `skip` names a module left unquantized by a per-module override
// (false in the config, as mlx_lm writes), exercising the mixed case.
inline void write_pair(const std::filesystem::path& dir, models::Arch arch, quant::AffineSpec spec, uint64_t seed,
                       const std::string& skip = "") {
  auto pc = models::synth_preset(arch, "tiny");
  ASSERT_TRUE(pc.is_ok());
  models::ModelConfig c = *pc;
  c.rope_scaling = models::RopeScaling::None;
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<RawTensor> q, dense;
  auto vec = [&](const std::string& n, int64_t len, float mean) {
    std::vector<float> v(static_cast<size_t>(len));
    for (auto& x : v) x = mean + 0.1f * nd(g);
    q.push_back(f32_tensor(n, Shape{len}, v));
    dense.push_back(f32_tensor(n, Shape{len}, v));
  };
  auto mat = [&](const std::string& n, int64_t rows, int64_t cols) {
    std::vector<float> v(static_cast<size_t>(rows * cols));
    const float sc = 1.0f / std::sqrt(static_cast<float>(cols));
    for (auto& x : v) x = sc * nd(g);
    const std::string module = n.substr(0, n.size() - std::string(".weight").size());
    if (module == skip) {
      q.push_back(f32_tensor(n, Shape{rows, cols}, v));
      dense.push_back(f32_tensor(n, Shape{rows, cols}, v));
      return;
    }
    auto r = quant::affine_quantize(spec, rows, cols, v.data(), DType::F16);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    std::vector<float> deq(v.size());
    ASSERT_TRUE(quant::affine_dequantize(spec, rows, cols, r->packed.data(), r->packed.size(), DType::F16,
                                         r->scales.data(), r->biases.data(), deq.data())
                    .is_ok());
    dense.push_back(f32_tensor(n, Shape{rows, cols}, deq));
    q.push_back({n, "U32", Shape{rows, cols * spec.bits / 32}, r->packed});
    q.push_back({module + ".scales", "F16", Shape{rows, cols / spec.group_size}, r->scales});
    q.push_back({module + ".biases", "F16", Shape{rows, cols / spec.group_size}, r->biases});
  };
  const int64_t d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  const bool gemma = arch == models::Arch::Gemma3;
  const float norm_mean = gemma ? 0.0f : 1.0f;  // Gemma checkpoints store w of (1 + w)
  mat("model.embed_tokens.weight", c.n_vocab, d);
  vec("model.norm.weight", d, norm_mean);
  if (!c.tied_embeddings) mat("lm_head.weight", c.n_vocab, d);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string l = "model.layers." + std::to_string(il) + ".";
    vec(l + "input_layernorm.weight", d, norm_mean);
    mat(l + "self_attn.q_proj.weight", qd, d);
    mat(l + "self_attn.k_proj.weight", kvd, d);
    mat(l + "self_attn.v_proj.weight", kvd, d);
    mat(l + "self_attn.o_proj.weight", d, qd);
    if (c.qkv_bias) {
      vec(l + "self_attn.q_proj.bias", qd, 0.0f);
      vec(l + "self_attn.k_proj.bias", kvd, 0.0f);
      vec(l + "self_attn.v_proj.bias", kvd, 0.0f);
    }
    if (c.qk_norm) {
      vec(l + "self_attn.q_norm.weight", c.head_dim, norm_mean);
      vec(l + "self_attn.k_norm.weight", c.head_dim, norm_mean);
    }
    vec(l + "post_attention_layernorm.weight", d, norm_mean);
    if (gemma) {
      vec(l + "pre_feedforward_layernorm.weight", d, norm_mean);
      vec(l + "post_feedforward_layernorm.weight", d, norm_mean);
    }
    mat(l + "mlp.gate_proj.weight", c.n_ff, d);
    mat(l + "mlp.up_proj.weight", c.n_ff, d);
    mat(l + "mlp.down_proj.weight", d, c.n_ff);
  }
  std::filesystem::create_directories(dir / "mlx");
  std::filesystem::create_directories(dir / "dense");
  write_safetensors(dir / "mlx" / "model.safetensors", q);
  write_safetensors(dir / "dense" / "model.safetensors", dense);
  std::string quant = "{\"group_size\":" + std::to_string(spec.group_size) + ",\"bits\":" + std::to_string(spec.bits);
  if (!skip.empty()) quant += ",\"" + skip + "\":false";
  quant += "}";
  std::ofstream(dir / "mlx" / "config.json") << config_json(c, quant);
  std::ofstream(dir / "dense" / "config.json") << config_json(c, "");
}

}  // namespace mlxn::test::mlxq
