// Model layer (models/): tiny random-weight models of each architecture against an independent float64
// reimplementation (model_ref.h), chunked prefill vs token-by-token decode, graph replay vs eager decode,
// generation, synth files, Hugging Face checkpoints and the error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "mlxn/io/gguf_writer.h"
#include "mlxn/models/generate.h"
#include "mlxn/models/model.h"
#include "mlxn/models/synth.h"
#include "mlxn/quant/ggml_type.h"
#include "model_ref.h"
#include "models/model_test_util.h"
#include "test_util.h"

namespace mlxn {
namespace {

namespace fs = std::filesystem;
using models::Arch;

using test::TmpDir;

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
  return test::load_model(path, Device::cpu(), test::model_options(chunk, ctx));
}

std::vector<int32_t> random_tokens(size_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
  return t;
}

using test::logits_of;

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

// ---- synth: llama.cpp's mixtures (Q4_K_M and friends) ---------------------------------------------------------------

// A 16-layer tiny llama: with 16 layers llama.cpp's "more bits" layers are a real pattern, and n_ff = 544 (17 x 32)
// makes ffn_down's rows not whole 256-element blocks, so the shape fallback shows.
models::ModelConfig mixture_llama() {
  auto c = tiny(Arch::Llama);
  c.n_layer = 16;
  c.n_ff = 544;
  return c;
}

// The layers of a 16-layer model that Q4_K_M / Q5_K_M give more bits, worked out by hand from llama.cpp's
// use_more_bits (i < n/8, i >= 7n/8, (i - n/8) % 3 == 2 with n/8 = 2, 7n/8 = 14).
bool more_bits_16(int64_t layer) {
  for (int64_t l : {0, 1, 4, 7, 10, 13, 14, 15})
    if (l == layer) return true;
  return false;
}

int64_t layer_in(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::stoll(name.substr(4, name.find('.', 4) - 4));
}

bool has(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

// Q4_K_M on mixture_llama(), as llama-quantize types it: untied token_embd Q4_K, output Q6_K, attn_v Q6_K in the
// more-bits layers, ffn_down likewise but its 544-wide rows fall back (Q6_K -> Q8_0, Q4_K -> Q5_0), the rest Q4_K.
DType q4_k_m_want(const std::string& name, const Shape& shape) {
  if (shape.rank() == 1) return DType::F32;
  if (name == "output.weight") return DType::Q6_K;
  const int64_t l = layer_in(name);
  if (has(name, "attn_v.")) return more_bits_16(l) ? DType::Q6_K : DType::Q4_K;
  if (has(name, "ffn_down.")) return more_bits_16(l) ? DType::Q8_0 : DType::Q5_0;
  return DType::Q4_K;
}

std::map<std::string, models::SynthTensor> by_name(const models::SynthPlan& p) {
  std::map<std::string, models::SynthTensor> m;
  for (const auto& t : p.tensors) m.emplace(t.name, t);
  return m;
}

TEST(ModelSynth, Q4KMPlanFollowsLlamaCppRules) {
  models::SynthOptions o;
  o.type_name = "q4_k_m";  // case-insensitive
  auto p = models::synth_plan(mixture_llama(), o);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->target.name, "Q4_K_M");
  EXPECT_EQ(p->target.file_type, 15u);
  EXPECT_EQ(p->target.recipe, io::QuantRecipe::Llama);
  int v6 = 0;
  for (const auto& t : p->tensors) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.type, q4_k_m_want(t.name, t.shape));
    if (has(t.name, "attn_v.") && t.type == DType::Q6_K) ++v6;
  }
  EXPECT_EQ(v6, 8);
  const auto m = by_name(*p);
  ASSERT_TRUE(m.count("blk.4.ffn_down.weight"));
  EXPECT_NE(m.at("blk.4.ffn_down.weight").note.find("544"), std::string::npos) << m.at("blk.4.ffn_down.weight").note;

  // Tied embeddings (Qwen3 tiny, 2 layers: layer 1 >= 7n/8 gets more bits, layer 0 does not): the token embedding
  // doubles as the output matrix and gets its Q6_K.
  auto q = models::synth_plan(tiny(Arch::Qwen3), o);
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  const auto qm = by_name(*q);
  EXPECT_EQ(qm.count("output.weight"), 0u);
  EXPECT_EQ(qm.at("token_embd.weight").type, DType::Q6_K);
  EXPECT_EQ(qm.at("blk.0.attn_v.weight").type, DType::Q4_K);
  EXPECT_EQ(qm.at("blk.1.attn_v.weight").type, DType::Q6_K);
  EXPECT_EQ(qm.at("blk.0.ffn_down.weight").type, DType::Q4_K);
  EXPECT_EQ(qm.at("blk.1.ffn_down.weight").type, DType::Q6_K);
  EXPECT_EQ(qm.at("blk.1.ffn_up.weight").type, DType::Q4_K);

  // Tied output rows that are not whole Q4_K blocks (width 320 = 10 x 32) are Q8_0 (llama.cpp's output rule), other
  // 320-wide matrices fall back Q4_K -> Q5_0; attn_output reads qd = 256 and stays Q4_K.
  auto g = tiny(Arch::Gemma3);
  g.n_embd = 320;
  auto gp = models::synth_plan(g, o);
  ASSERT_TRUE(gp.is_ok()) << gp.status().to_string();
  const auto gm = by_name(*gp);
  EXPECT_EQ(gm.at("token_embd.weight").type, DType::Q8_0);
  EXPECT_EQ(gm.at("blk.2.attn_q.weight").type, DType::Q5_0);
  EXPECT_EQ(gm.at("blk.2.attn_output.weight").type, DType::Q4_K);
}

TEST(ModelSynth, OtherMixturesAndPureTypes) {
  auto plan = [](const std::string& type, std::optional<io::QuantRecipe> recipe = std::nullopt) {
    models::SynthOptions o;
    o.type_name = type;
    o.recipe = recipe;
    auto p = models::synth_plan(mixture_llama(), o);
    EXPECT_TRUE(p.is_ok()) << type << ": " << p.status().to_string();
    return p.is_ok() ? std::move(p).value() : models::SynthPlan{};
  };
  // llama_ftype numbers of llama.cpp's llama.h.
  const std::pair<const char*, uint32_t> ftypes[] = {{"Q4_K_M", 15}, {"Q4_K_S", 14}, {"Q5_K_M", 17},
                                                     {"Q5_K_S", 16}, {"Q3_K_M", 12}, {"Q6_K", 18},
                                                     {"Q8_0", 7},    {"Q4_0", 2},    {"F16", 1}};
  for (const auto& [name, ft] : ftypes) EXPECT_EQ(plan(name).target.file_type, ft) << name;

  // Q4_K_S: attn_v Q5_K in the first 4 layers, ffn_down Q5_K in the first n/8 = 2 (544-wide: Q5_K -> Q5_1).
  auto s = by_name(plan("Q4_K_S"));
  EXPECT_EQ(s.at("output.weight").type, DType::Q6_K);
  EXPECT_EQ(s.at("blk.3.attn_v.weight").type, DType::Q5_K);
  EXPECT_EQ(s.at("blk.4.attn_v.weight").type, DType::Q4_K);
  EXPECT_EQ(s.at("blk.1.ffn_down.weight").type, DType::Q5_1);
  EXPECT_EQ(s.at("blk.2.ffn_down.weight").type, DType::Q5_0);
  // Q5_K_M: as Q4_K_M one step up.
  auto m5 = by_name(plan("Q5_K_M"));
  EXPECT_EQ(m5.at("blk.4.attn_v.weight").type, DType::Q6_K);
  EXPECT_EQ(m5.at("blk.5.attn_v.weight").type, DType::Q5_K);
  EXPECT_EQ(m5.at("blk.5.ffn_down.weight").type, DType::Q5_1);
  EXPECT_EQ(m5.at("blk.5.attn_q.weight").type, DType::Q5_K);
  // Q3_K_M: attn_v Q5_K for the first 2, then Q4_K; ffn_down Q5_K for i < n/16 = 1, then Q4_K; attn_output Q4_K.
  auto m3 = by_name(plan("Q3_K_M"));
  EXPECT_EQ(m3.at("blk.1.attn_v.weight").type, DType::Q5_K);
  EXPECT_EQ(m3.at("blk.2.attn_v.weight").type, DType::Q4_K);
  EXPECT_EQ(m3.at("blk.0.ffn_down.weight").type, DType::Q5_1);
  EXPECT_EQ(m3.at("blk.1.ffn_down.weight").type, DType::Q5_0);
  EXPECT_EQ(m3.at("blk.1.attn_output.weight").type, DType::Q4_K);
  EXPECT_EQ(m3.at("blk.1.attn_q.weight").type, DType::Q3_K);
  // Every matrix `rest`, except ffn_down (544-wide rows) `down`.
  auto uniform = [](const models::SynthPlan& p, DType down, DType rest) {
    for (const auto& t : p.tensors) {
      if (t.shape.rank() == 2) {
        EXPECT_EQ(t.type, has(t.name, "ffn_down.") ? down : rest) << t.name;
      }
    }
  };
  // Q6_K and Q8_0: every matrix (Q6_K's 544-wide rows: Q8_0).
  uniform(plan("Q6_K"), DType::Q8_0, DType::Q6_K);
  uniform(plan("Q8_0"), DType::Q8_0, DType::Q8_0);
  // A single type is pure (output included), but the shape fallback still applies, as llama-quantize --pure does.
  uniform(plan("Q4_K"), DType::Q5_0, DType::Q4_K);
  // ... and the recipe can be chosen either way.
  EXPECT_EQ(by_name(plan("Q4_0", io::QuantRecipe::Llama)).at("output.weight").type, DType::Q6_K);
  uniform(plan("Q4_K_M", io::QuantRecipe::Pure), DType::Q5_0, DType::Q4_K);
  // Float types: every matrix, no rules.
  for (const auto& t : plan("F16").tensors) EXPECT_EQ(t.type, t.shape.rank() == 2 ? DType::F16 : DType::F32);
}

// `mlxn quantize` implements the same llama.cpp rules separately (src/io/quantize_model.cpp): quantizing an F32 synth
// file must type every tensor as synth would have.
TEST(ModelSynth, MixturesAgreeWithQuantizeTool) {
  TmpDir dir;
  models::SynthOptions f32;
  f32.type = DType::F32;
  f32.threads = 2;
  const std::string path = dir.file("f32.gguf");
  ASSERT_TRUE(models::write_synth_gguf(mixture_llama(), path, f32).is_ok());
  for (const char* type : {"Q4_K_M", "Q4_K_S", "Q5_K_M", "Q5_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q6_K", "Q8_0", "Q4_0",
                           "Q2_K", "IQ4_NL", "MXFP4_MOE"}) {
    SCOPED_TRACE(type);
    io::QuantizeOptions qo;
    qo.type = type;
    qo.recipe = io::QuantRecipe::Llama;
    qo.dry_run = true;
    auto q = io::quantize_model(path, "", qo);
    ASSERT_TRUE(q.is_ok()) << q.status().to_string();
    models::SynthOptions so;
    so.type_name = type;
    so.recipe = io::QuantRecipe::Llama;
    auto p = models::synth_plan(mixture_llama(), so);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    const auto m = by_name(*p);
    ASSERT_EQ(q->tensors.size(), p->tensors.size());
    for (const auto& t : q->tensors) {
      ASSERT_TRUE(m.count(t.name)) << t.name;
      EXPECT_EQ(t.ggml_type, quant::ggml_from_dtype(m.at(t.name).type).value()) << t.name << " " << t.note;
    }
  }
}

// The written Q4_K_M file: every tensor as planned, llama.cpp's file type, and a forward pass that matches the float64
// reference on the same (dequantized) weights as closely as an F32 model does: the CPU matmuls dequantize exactly.
TEST(ModelSynth, WrittenMixtureLoadsAndRuns) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  TmpDir dir;
  const auto c = mixture_llama();
  models::SynthOptions o;
  o.type_name = "Q4_K_M";
  o.seed = seed;
  o.threads = 2;
  const std::string path = dir.file("q4km.gguf");
  auto r = models::write_synth_gguf(c, path, o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto f = io::GgufFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->get<uint32_t>("general.file_type").value(), 15u);
  EXPECT_EQ(f->get<uint32_t>("general.quantization_version").value(), 2u);
  size_t n = 0;
  for (const auto& t : f->tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(t.dtype.has_value());
    EXPECT_EQ(*t.dtype, q4_k_m_want(t.name, t.shape));
    ++n;
  }
  EXPECT_EQ(n, 2 + 1 + 16 * 9 + 1);  // token_embd, output(_norm), 9 per layer, rope_freqs

  auto m = load(path);
  ASSERT_TRUE(m);
  const auto toks = random_tokens(9, c.n_vocab, seed);
  ASSERT_TRUE(m->prefill(toks).is_ok());
  const auto got = logits_of(*m);
  test::RefDecoder ref(*f, c);
  const auto want = ref.logits(toks);
  ASSERT_EQ(got.size(), want.size());
  for (float x : got) ASSERT_TRUE(std::isfinite(x));
  EXPECT_LT(test::rel_l2(got, want), 5e-4);
}

TEST(ModelSynth, UnknownTypeListsTheAcceptedOnes) {
  models::SynthOptions o;
  o.type_name = "Q4_K_X";
  auto p = models::synth_plan(tiny(Arch::Llama), o);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), StatusCode::InvalidArgument);
  const std::string msg = p.status().message();
  for (const char* part : {"[synth]", "Q4_K_X", "Q4_K_M", "Q5_K_S", "Q6_K", "Q8_0", "F16"})
    EXPECT_NE(msg.find(part), std::string::npos) << part << " not in: " << msg;
  // Nothing is written for a bad type.
  TmpDir dir;
  const std::string path = dir.file("bad.gguf");
  auto w = models::write_synth_gguf(tiny(Arch::Llama), path, o);
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("Q4_K_M"), std::string::npos) << w.status().message();
  EXPECT_FALSE(fs::exists(path));
  // Names that exist but are not weight formats say why.
  o.type_name = "Q8_K";
  auto a = models::synth_plan(tiny(Arch::Llama), o);
  ASSERT_FALSE(a.is_ok());
  EXPECT_NE(a.status().message().find("activation"), std::string::npos) << a.status().message();
}

TEST(ModelSynth, GemmaPresetsOfRealSizes) {
  auto g12 = models::synth_preset(Arch::Gemma3, "12b");
  ASSERT_TRUE(g12.is_ok()) << g12.status().to_string();
  EXPECT_EQ(g12->n_layer, 48);
  EXPECT_EQ(g12->n_embd, 3840);
  EXPECT_EQ(g12->n_head, 16);
  EXPECT_EQ(g12->n_head_kv, 8);
  EXPECT_EQ(g12->head_dim, 256);
  EXPECT_EQ(g12->n_ff, 15360);
  EXPECT_EQ(g12->n_vocab, 262208);
  EXPECT_EQ(g12->sliding_window, 1024);
  EXPECT_EQ(g12->attn_scale, 0.0f);  // query_pre_attn_scalar = head_dim
  EXPECT_EQ(std::count(g12->layer_sliding.begin(), g12->layer_sliding.end(), false), 8);
  auto g27 = models::synth_preset(Arch::Gemma3, "27b");
  ASSERT_TRUE(g27.is_ok()) << g27.status().to_string();
  EXPECT_EQ(g27->n_layer, 62);
  EXPECT_EQ(g27->n_embd, 5376);
  EXPECT_EQ(g27->n_head, 32);
  EXPECT_EQ(g27->n_head_kv, 16);
  EXPECT_EQ(g27->head_dim, 128);
  EXPECT_EQ(g27->n_ff, 21504);
  EXPECT_FLOAT_EQ(g27->attn_scale, 1.0f / std::sqrt(168.0f));                              // query_pre_attn_scalar 168
  EXPECT_EQ(std::count(g27->layer_sliding.begin(), g27->layer_sliding.end(), false), 10);  // 6, 12, ..., 60
  for (const auto* g : {&*g12, &*g27}) {
    EXPECT_EQ(g->rope_scaling, models::RopeScaling::Linear);
    EXPECT_EQ(g->rope_factor, 8.0f);
    EXPECT_EQ(g->rope_base, 1000000.0f);
    EXPECT_EQ(g->rope_base_local, 10000.0f);
    EXPECT_TRUE(g->tied_embeddings);
  }
  const auto names = models::synth_preset_names(Arch::Gemma3);
  EXPECT_NE(std::find(names.begin(), names.end(), "27b"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "12b"), names.end());
  // Q4_K_M on the 27B: every shape is whole 256-blocks (5376 = 21 x 256, 21504 = 84 x 256, qd 4096), so no
  // fallback; the tied embedding is Q6_K; with n = 62 (n/8 = 7, 7n/8 = 54) attn_v is Q6_K in layers 0..6, 54..61
  // and 9, 12, ..., 51.
  models::SynthOptions o;
  o.type_name = "Q4_K_M";
  auto p = models::synth_plan(*g27, o);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  int q6 = 0;
  for (const auto& t : p->tensors) {
    EXPECT_TRUE(t.note.empty() || t.note == "llama.cpp rule") << t.name << ": " << t.note;
    if (has(t.name, "attn_v.") && t.type == DType::Q6_K) ++q6;
  }
  EXPECT_EQ(by_name(*p).at("token_embd.weight").type, DType::Q6_K);
  EXPECT_EQ(q6, 7 + 8 + 15);
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
