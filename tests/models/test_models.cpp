// Model layer (models/): tiny random-weight models of each architecture against an independent float64
// reimplementation (model_ref.h), chunked prefill vs token-by-token decode, graph replay vs eager decode,
// generation, synth files, Hugging Face checkpoints and the error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mlxn/io/gguf_writer.h"
#include "mlxn/models/generate.h"
#include "mlxn/models/model.h"
#include "mlxn/models/synth.h"
#include "model_ref.h"
#include "test_util.h"

namespace mlxn {
namespace {

namespace fs = std::filesystem;
using models::Arch;

struct TmpDir {
  fs::path path;
  TmpDir() {
    path = fs::temp_directory_path() / ("mlxn_model_test_" + std::to_string(test::fresh_seed()));
    fs::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& n) const { return (path / n).string(); }
};

models::ModelConfig tiny(Arch a) {
  auto c = models::synth_preset(a, "tiny");
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.value();
}

std::string write_tiny(const TmpDir& dir, Arch a, DType type, uint64_t seed, const std::string& name = "m.gguf") {
  const std::string path = dir.file(name);
  models::SynthOptions o;
  o.type = type;
  o.seed = seed;
  o.threads = 2;
  auto r = models::write_synth_gguf(tiny(a), path, o);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return path;
}

std::unique_ptr<models::Model> load(const std::string& path, int64_t chunk = 16, int64_t ctx = 64) {
  models::ModelOptions o;
  o.max_chunk = chunk;
  o.max_context = ctx;
  auto m = models::Model::load(path, Device::cpu(), o);
  EXPECT_TRUE(m.is_ok()) << m.status().to_string();
  return m.is_ok() ? std::move(m).value() : nullptr;
}

std::vector<int32_t> random_tokens(size_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
  return t;
}

std::vector<float> logits_of(models::Model& m) {
  auto l = m.read_logits();
  EXPECT_TRUE(l.is_ok()) << l.status().to_string();
  return l.is_ok() ? l.value() : std::vector<float>{};
}

size_t argmax(const std::vector<float>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

class ModelArch : public ::testing::TestWithParam<Arch> {};

std::string arch_param_name(const ::testing::TestParamInfo<Arch>& i) { return std::string(models::arch_name(i.param)); }

// (a) The CPU forward against the float64 reference: last-token logits of a 13-token prompt (longer than Gemma's
// window of 5, so sliding and global layers differ).
TEST_P(ModelArch, ForwardMatchesFloat64Reference) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  const std::string path = write_tiny(dir, GetParam(), DType::F32, seed);
  auto m = load(path);
  ASSERT_TRUE(m);
  const auto toks = random_tokens(13, m->config().n_vocab, seed);
  ASSERT_TRUE(m->prefill(toks).is_ok());
  const auto got = logits_of(*m);

  auto f = io::GgufFile::open(path);
  ASSERT_TRUE(f.is_ok());
  test::RefDecoder ref(*f, tiny(GetParam()));
  const auto want = ref.logits(toks);
  ASSERT_EQ(got.size(), want.size());
  // f32 activations, f16 KV (modelled by the reference): where the f32 and float64 values of a K / V element fall on
  // either side of an f16 rounding boundary they differ by a whole f16 ulp (2^-11): measured up to 1.9e-4 over 160
  // seeds (the bound was 1e-4 and failed about one run in ten).
  EXPECT_LT(test::rel_l2(got, want), 5e-4);
  std::vector<float> wf(want.begin(), want.end());
  EXPECT_EQ(argmax(got), argmax(wf));
}

// Gemma 3: the window matters (the reference without it differs), so the test above can fail on a wrong window.
TEST(ModelGemma3, SlidingWindowChangesTheResult) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  const std::string path = write_tiny(dir, Arch::Gemma3, DType::F32, seed);
  auto m = load(path);
  ASSERT_TRUE(m);
  const auto toks = random_tokens(13, m->config().n_vocab, seed);
  ASSERT_TRUE(m->prefill(toks).is_ok());
  const auto got = logits_of(*m);
  auto f = io::GgufFile::open(path);
  ASSERT_TRUE(f.is_ok());
  auto c = tiny(Arch::Gemma3);
  c.layer_sliding.assign(c.layer_sliding.size(), false);
  test::RefDecoder ref(*f, c);
  EXPECT_GT(test::rel_l2(got, ref.logits(toks)), 1e-3);
}

// (b) One chunk, several chunks and token-by-token decode give the same logits.
TEST_P(ModelArch, ChunkedPrefillAndDecodeAgree) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  const std::string path = write_tiny(dir, GetParam(), DType::F32, seed);
  auto m = load(path);
  ASSERT_TRUE(m);
  const auto toks = random_tokens(11, m->config().n_vocab, seed);
  ASSERT_TRUE(m->prefill(toks).is_ok());
  const auto one = logits_of(*m);
  EXPECT_EQ(m->position(), 11);

  m->reset();
  ASSERT_TRUE(m->prefill(toks, 4).is_ok());
  const auto chunks = logits_of(*m);
  EXPECT_LT(test::rel_l2(chunks, one), 1e-6);

  m->reset();
  ASSERT_TRUE(m->prefill(std::span(toks).first(1)).is_ok());
  for (size_t i = 1; i < toks.size(); ++i) ASSERT_TRUE(m->decode(toks[i]).is_ok());
  const auto steps = logits_of(*m);
  EXPECT_LT(test::rel_l2(steps, one), 1e-6);
  EXPECT_EQ(m->position(), 11);
}

// (c) The captured decode graph replayed per token equals eager decode steps.
TEST_P(ModelArch, GraphDecodeEqualsEager) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  const std::string path = write_tiny(dir, GetParam(), DType::F32, seed);
  auto eager = load(path), graph = load(path);
  ASSERT_TRUE(eager && graph);
  const auto toks = random_tokens(12, eager->config().n_vocab, seed);
  const auto prompt = std::span(toks).first(6);
  ASSERT_TRUE(eager->prefill(prompt).is_ok());
  ASSERT_TRUE(graph->prefill(prompt).is_ok());
  auto g = graph->capture_decode();
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_GT(g->op_count(), 0u);
  for (size_t i = 6; i < toks.size(); ++i) {
    ASSERT_TRUE(eager->decode(toks[i]).is_ok());
    ASSERT_TRUE(graph->set_token(toks[i]).is_ok());
    ASSERT_TRUE(graph->replay_decode(*g).is_ok());
    const auto a = logits_of(*eager), b = logits_of(*graph);
    EXPECT_LT(test::rel_l2(b, a), 1e-6) << "token " << i;
  }
  EXPECT_EQ(graph->position(), eager->position());
}

INSTANTIATE_TEST_SUITE_P(Tiny, ModelArch, ::testing::Values(Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Gemma3),
                         arch_param_name);

// Generation: graph replay with device sampling gives the same tokens as eager steps with the same seeds; greedy
// generation equals the argmax of eager logits.
TEST(ModelGenerate, GraphAndEagerSampleTheSameTokens) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  const std::string path = write_tiny(dir, Arch::Qwen3, DType::F32, seed);
  auto a = load(path), b = load(path);
  ASSERT_TRUE(a && b);
  const auto prompt = random_tokens(5, a->config().n_vocab, seed);
  models::GenerateOptions o;
  o.n_predict = 8;
  o.sampling.temperature = 0.9f;
  o.sampling.top_k = 40;
  o.sampling.top_p = 0.95f;
  o.sampling.seed = seed;
  auto rg = models::generate(*a, prompt, o);
  ASSERT_TRUE(rg.is_ok()) << rg.status().to_string();
  o.use_graph = false;
  auto re = models::generate(*b, prompt, o);
  ASSERT_TRUE(re.is_ok()) << re.status().to_string();
  EXPECT_EQ(rg->tokens, re->tokens);
  EXPECT_EQ(rg->tokens.size(), 8u);
  EXPECT_EQ(a->position(), 5 + 7);
}

TEST(ModelGenerate, GreedyFollowsTheLogits) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  const std::string path = write_tiny(dir, Arch::Llama, DType::F32, seed);
  auto a = load(path), b = load(path);
  ASSERT_TRUE(a && b);
  const auto prompt = random_tokens(4, a->config().n_vocab, seed);
  models::GenerateOptions o;
  o.n_predict = 5;
  o.sampling.temperature = 0.0f;
  auto r = models::generate(*a, prompt, o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_TRUE(b->prefill(prompt).is_ok());
  for (int32_t t : r->tokens) {
    EXPECT_EQ(static_cast<int32_t>(argmax(logits_of(*b))), t);
    ASSERT_TRUE(b->decode(t).is_ok());
  }
}

// (d) synth writes a GGUF of the preset's architecture that loads back and runs.
TEST(ModelSynth, WritesLoadableGguf) {
  TmpDir dir;
  for (Arch a : {Arch::Llama, Arch::Qwen3, Arch::Gemma3}) {
    for (DType t : {DType::Q4_0, DType::Q4_K, DType::F16}) {
      SCOPED_TRACE(std::string(models::arch_name(a)) + " " + std::string(dtype_name(t)));
      const std::string path = write_tiny(dir, a, t, 7, "s.gguf");
      auto f = io::GgufFile::open(path);
      ASSERT_TRUE(f.is_ok()) << f.status().to_string();
      EXPECT_EQ(f->architecture(), models::arch_name(a));
      ASSERT_NE(f->tensor("blk.0.attn_q.weight"), nullptr);
      EXPECT_EQ(f->tensor("blk.0.attn_q.weight")->dtype, t);
      EXPECT_EQ(f->tensor("blk.0.attn_norm.weight")->dtype, DType::F32);
      auto c = models::config_from_gguf(*f);
      ASSERT_TRUE(c.is_ok()) << c.status().to_string();
      const auto want = tiny(a);
      EXPECT_EQ(c->n_layer, want.n_layer);
      EXPECT_EQ(c->n_embd, want.n_embd);
      EXPECT_EQ(c->n_head_kv, want.n_head_kv);
      EXPECT_EQ(c->head_dim, want.head_dim);
      EXPECT_EQ(c->tied_embeddings, want.tied_embeddings);
      EXPECT_EQ(c->layer_sliding, want.layer_sliding);
      // llama: the Llama 3.1 scaling travels as rope_freqs.weight, not as metadata.
      if (a == Arch::Llama)
        EXPECT_NE(f->tensor("rope_freqs.weight"), nullptr);
      else
        EXPECT_EQ(c->rope_scaling, want.rope_scaling);
      auto m = load(path);
      ASSERT_TRUE(m);
      ASSERT_TRUE(m->prefill(random_tokens(7, c->n_vocab, 3)).is_ok());
      const auto l = logits_of(*m);
      ASSERT_EQ(l.size(), static_cast<size_t>(c->n_vocab));
      for (float x : l) ASSERT_TRUE(std::isfinite(x));
    }
  }
}

TEST(ModelSynth, PresetsOfRealSizes) {
  auto l = models::synth_preset(Arch::Llama, "8b");
  ASSERT_TRUE(l.is_ok());
  EXPECT_EQ(l->n_layer, 32);
  EXPECT_EQ(l->n_ff, 14336);
  EXPECT_EQ(l->n_vocab, 128256);
  auto q = models::synth_preset(Arch::Qwen3, "0.6b");
  ASSERT_TRUE(q.is_ok());
  EXPECT_TRUE(q->tied_embeddings);
  auto g = models::synth_preset(Arch::Gemma3, "4b");
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(std::count(g->layer_sliding.begin(), g->layer_sliding.end(), false), 5);  // layers 6, 12, ..., 30
  auto bad = models::synth_preset(Arch::Qwen3, "13b");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("0.6b"), std::string::npos) << bad.status().message();
}

TEST(ModelConfig, HuggingFaceConfigs) {
  auto j = io::JsonConfig::parse(R"({"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
      "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
      "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 131072, "tie_word_embeddings": false,
      "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192, "rope_type": "llama3"}})");
  ASSERT_TRUE(j.is_ok());
  auto c = models::config_from_hf(*j);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->rope_scaling, models::RopeScaling::Llama3);
  EXPECT_EQ(c->rope_orig_ctx, 8192);
  EXPECT_EQ(c->rope_layout, ops::RopeLayout::Neox);
  EXPECT_FALSE(c->tied_embeddings);

  // Gemma 3 multimodal: the text settings under text_config; 1-based every 6th layer global by default.
  auto g = io::JsonConfig::parse(R"({"model_type": "gemma3", "text_config": {"model_type": "gemma3_text",
      "num_hidden_layers": 12, "hidden_size": 2560, "intermediate_size": 10240, "num_attention_heads": 8,
      "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 262208, "sliding_window": 1024,
      "query_pre_attn_scalar": 256, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
      "final_logit_softcapping": null}})");
  ASSERT_TRUE(g.is_ok());
  auto gc = models::config_from_hf(*g);
  ASSERT_TRUE(gc.is_ok()) << gc.status().to_string();
  EXPECT_EQ(gc->arch, Arch::Gemma3);
  EXPECT_FLOAT_EQ(gc->norm_weight_offset, 1.0f);
  EXPECT_FLOAT_EQ(gc->attn_scale, 1.0f / 16.0f);
  EXPECT_FLOAT_EQ(gc->final_softcap, 0.0f);
  EXPECT_EQ(gc->rope_scaling, models::RopeScaling::Linear);
  std::vector<bool> want(12, true);
  want[5] = want[11] = false;
  EXPECT_EQ(gc->layer_sliding, want);
  EXPECT_TRUE(gc->tied_embeddings);

  auto bad = io::JsonConfig::parse(R"({"model_type": "mamba"})");
  EXPECT_EQ(models::config_from_hf(*bad).status().code(), StatusCode::Unsupported);
  auto missing = io::JsonConfig::parse(R"({"model_type": "qwen3", "hidden_size": 8})");
  auto mc = models::config_from_hf(*missing);
  EXPECT_EQ(mc.status().code(), StatusCode::NotFound);
  EXPECT_NE(mc.status().message().find("num_hidden_layers"), std::string::npos) << mc.status().message();
}

// A GGUF copy of `src` without tensor `drop` and with `reshape` given a wrong shape.
std::string rewrite(const TmpDir& dir, const std::string& src, const std::string& drop, const std::string& reshape) {
  auto f = io::GgufFile::open(src);
  EXPECT_TRUE(f.is_ok());
  io::GgufWriter w;
  for (const auto& kv : f->metadata()) w.set_value(kv.key, kv.value);
  for (const auto& t : f->tensors()) {
    if (t.name == drop) continue;
    auto data = f->tensor_data(t.name);
    Shape s = t.shape;
    if (t.name == reshape) s = Shape{s[1], s[0]};
    EXPECT_TRUE(w.add_tensor(t.name, t.ggml_type, s, *data).is_ok());
  }
  const std::string out = dir.file("bad.gguf");
  EXPECT_TRUE(w.write(out).is_ok());
  return out;
}

TEST(ModelErrors, MissingOrMisshapedTensorsAndBadInput) {
  TmpDir dir;
  const std::string path = write_tiny(dir, Arch::Qwen3, DType::F32, 3);
  {
    auto m = models::Model::load(rewrite(dir, path, "blk.1.ffn_up.weight", ""), Device::cpu());
    ASSERT_FALSE(m.is_ok());
    EXPECT_EQ(m.status().code(), StatusCode::NotFound);
    EXPECT_NE(m.status().message().find("blk.1.ffn_up.weight"), std::string::npos) << m.status().message();
  }
  {
    auto m = models::Model::load(rewrite(dir, path, "", "blk.0.attn_q.weight"), Device::cpu());
    ASSERT_FALSE(m.is_ok());
    EXPECT_EQ(m.status().code(), StatusCode::InvalidArgument);
    EXPECT_NE(m.status().message().find("blk.0.attn_q.weight"), std::string::npos) << m.status().message();
  }
  {
    auto f = io::GgufFile::open(path);
    io::GgufWriter w;
    for (const auto& kv : f->metadata()) w.set_value(kv.key, kv.value);
    w.set_string("general.architecture", "mamba");
    const std::string p = dir.file("arch.gguf");
    ASSERT_TRUE(w.write(p).is_ok());
    auto m = models::Model::load(p, Device::cpu());
    ASSERT_FALSE(m.is_ok());
    EXPECT_EQ(m.status().code(), StatusCode::Unsupported);
    EXPECT_NE(m.status().message().find("mamba"), std::string::npos);
  }
  auto m = load(path, 8, 16);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->prefill(random_tokens(17, 512, 1)).code(), StatusCode::OutOfRange);
  EXPECT_EQ(m->prefill(std::vector<int32_t>{1, 512}).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(m->decode(-1).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(m->position(), 0);
  ASSERT_TRUE(m->prefill(random_tokens(16, 512, 1)).is_ok());
  EXPECT_EQ(m->decode(1).code(), StatusCode::OutOfRange);
  auto nt = models::load_tokenizer(path);
  EXPECT_FALSE(nt.is_ok());
}

// ---- Hugging Face checkpoints: the same weights as a safetensors folder load to the same logits. ----

// Writes `tensors` (name -> shape, f32 values) as one model.safetensors.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, std::pair<Shape, std::vector<float>>>>& tensors) {
  // Built with a stream: GCC 12 flags `const char* + std::string&&` with a false -Wrestrict.
  std::ostringstream hs;
  hs << "{";
  uint64_t off = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    hs << (i ? "," : "") << "\"" << name << "\":{\"dtype\":\"F32\",\"shape\":[";
    for (int d = 0; d < t.first.rank(); ++d) hs << (d ? "," : "") << t.first[d];
    const uint64_t n = t.second.size() * 4;
    hs << "],\"data_offsets\":[" << off << "," << off + n << "]}";
    off += n;
  }
  hs << "}";
  std::string header = hs.str();
  while (header.size() % 8) header += ' ';
  std::ofstream f(path, std::ios::binary);
  const uint64_t hl = header.size();
  f.write(reinterpret_cast<const char*>(&hl), 8);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& [name, t] : tensors)
    f.write(reinterpret_cast<const char*>(t.second.data()), static_cast<std::streamsize>(t.second.size() * 4));
}

// Converts a tiny GGUF back to a Hugging Face folder: names mapped back, llama's q / k rows un-permuted (the
// converter's permutation puts the rotate_half halves of each head into interleaved pairs), Gemma's norms stored as
// w instead of 1 + w.
std::string to_hf(const TmpDir& dir, const std::string& gguf, const models::ModelConfig& c) {
  auto f = io::GgufFile::open(gguf);
  EXPECT_TRUE(f.is_ok());
  const bool gemma = c.arch == Arch::Gemma3;
  std::vector<std::pair<std::string, std::pair<Shape, std::vector<float>>>> ts;
  for (const auto& t : f->tensors()) {
    if (t.name == "rope_freqs.weight") continue;  // config.json's rope_scaling says it
    auto v = f->dequantize_tensor(t.name).value();
    std::string n = t.name;
    const bool is_norm = n.find("norm") != std::string::npos;
    if (gemma && is_norm)
      for (auto& x : v) x -= 1.0f;
    if (c.arch == Arch::Llama &&
        (n.find("attn_q.weight") != std::string::npos || n.find("attn_k.weight") != std::string::npos)) {
      const int64_t rows = t.shape[0], cols = t.shape[1], D = c.head_dim;
      std::vector<float> u(v.size());
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t h = r / D, j = r % D;
        const int64_t src = h * D + (j < D / 2 ? 2 * j : 2 * (j - D / 2) + 1);  // HF row j <- GGUF interleaved row
        std::copy_n(v.begin() + src * cols, cols, u.begin() + r * cols);
      }
      v.swap(u);
    }
    static const std::vector<std::pair<std::string, std::string>> kMap = {
        {"token_embd.weight", "model.embed_tokens.weight"},
        {"output_norm.weight", "model.norm.weight"},
        {"output.weight", "lm_head.weight"}};
    bool mapped = false;
    for (const auto& [g, h] : kMap)
      if (n == g) n = h, mapped = true;
    if (!mapped) {
      const auto dot = n.find('.', 4);
      const std::string layer = n.substr(4, dot - 4), rest = n.substr(dot + 1);
      const std::map<std::string, std::string> m = {
          {"attn_norm.weight", "input_layernorm.weight"},
          {"attn_q.weight", "self_attn.q_proj.weight"},
          {"attn_k.weight", "self_attn.k_proj.weight"},
          {"attn_v.weight", "self_attn.v_proj.weight"},
          {"attn_output.weight", "self_attn.o_proj.weight"},
          {"attn_q.bias", "self_attn.q_proj.bias"},
          {"attn_k.bias", "self_attn.k_proj.bias"},
          {"attn_v.bias", "self_attn.v_proj.bias"},
          {"attn_q_norm.weight", "self_attn.q_norm.weight"},
          {"attn_k_norm.weight", "self_attn.k_norm.weight"},
          {"post_attention_norm.weight", "post_attention_layernorm.weight"},
          {"ffn_norm.weight", gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"},
          {"ffn_gate.weight", "mlp.gate_proj.weight"},
          {"ffn_up.weight", "mlp.up_proj.weight"},
          {"ffn_down.weight", "mlp.down_proj.weight"},
          {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"}};
      EXPECT_TRUE(m.count(rest)) << rest;
      n = "model.layers." + layer + "." + m.at(rest);
    }
    ts.push_back({n, {t.shape, std::move(v)}});
  }
  const fs::path folder = dir.path / "hf";
  fs::create_directories(folder);
  write_safetensors((folder / "model.safetensors").string(), ts);
  std::ostringstream js;
  js << "{\"model_type\":\"" << (gemma ? "gemma3_text" : std::string(models::arch_name(c.arch))) << "\""
     << ",\"num_hidden_layers\":" << c.n_layer << ",\"hidden_size\":" << c.n_embd << ",\"intermediate_size\":" << c.n_ff
     << ",\"num_attention_heads\":" << c.n_head << ",\"num_key_value_heads\":" << c.n_head_kv
     << ",\"head_dim\":" << c.head_dim << ",\"vocab_size\":" << c.n_vocab << ",\"rms_norm_eps\":" << c.rms_eps
     << ",\"rope_theta\":" << c.rope_base << ",\"tie_word_embeddings\":" << (c.tied_embeddings ? "true" : "false")
     << ",\"max_position_embeddings\":" << c.n_ctx_train;
  if (c.rope_scaling == models::RopeScaling::Llama3) {
    js << ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":" << c.rope_factor
       << ",\"low_freq_factor\":" << c.rope_low_freq_factor << ",\"high_freq_factor\":" << c.rope_high_freq_factor
       << ",\"original_max_position_embeddings\":" << c.rope_orig_ctx << "}";
  }
  if (gemma) {
    js << ",\"sliding_window\":" << c.sliding_window << ",\"query_pre_attn_scalar\":" << c.head_dim
       << ",\"rope_local_base_freq\":" << c.rope_base_local << ",\"final_logit_softcapping\":null"
       << ",\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":" << c.rope_factor << "}";
  }
  js << "}";
  std::ofstream((folder / "config.json").string()) << js.str();
  return folder.string();
}

TEST_P(ModelArch, HuggingFaceFolderMatchesGguf) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  const std::string path = write_tiny(dir, GetParam(), DType::F32, seed);
  const std::string folder = to_hf(dir, path, tiny(GetParam()));
  auto g = load(path), h = load(folder);
  ASSERT_TRUE(g && h);
  EXPECT_EQ(h->config().format, models::WeightFormat::HuggingFace);
  EXPECT_EQ(h->config().rope_layout, ops::RopeLayout::Neox);
  EXPECT_EQ(h->config().layer_sliding, g->config().layer_sliding);
  const auto toks = random_tokens(13, g->config().n_vocab, seed);
  ASSERT_TRUE(g->prefill(toks).is_ok());
  ASSERT_TRUE(h->prefill(toks).is_ok());
  EXPECT_LT(test::rel_l2(logits_of(*h), logits_of(*g)), 1e-5);
}

}  // namespace
}  // namespace mlxn
