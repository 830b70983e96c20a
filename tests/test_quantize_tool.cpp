// `mlxn quantize` (io::quantize_model): GGUF and safetensors inputs, every block type against the reference
// quantizer byte for byte, llama.cpp's mixtures (Q4_K_M, Q4_K_S, Q5_K_M, ...) tensor by tensor, Hugging Face name
// mapping with the q/k row permutation, metadata, alignment, errors; the streaming writer and the synthetic model of
// `mlxn bench-load --synth`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mlxn/core/half.h"
#include "mlxn/io/gguf.h"
#include "mlxn/io/gguf_writer.h"
#include "mlxn/io/quantize_model.h"
#include "mlxn/io/safetensors.h"
#include "mlxn/quant/affine.h"
#include "mlxn/quant/ggml_type.h"
#include "mlxn/quant/quant.h"
#include "test_util.h"

namespace mlxn {
namespace {

namespace fs = std::filesystem;
using io::GgufFile;
using io::GgufWriter;
using io::QuantizeOptions;

fs::path temp_root() { return fs::temp_directory_path() / ("mlxn_test_quantize_" + std::to_string(getpid())); }

// The files of this run go when the test binary exits.
struct RemoveTempRoot {
  ~RemoveTempRoot() {
    std::error_code ec;
    fs::remove_all(temp_root(), ec);
  }
} remove_temp_root;

fs::path temp_dir(const std::string& name) {
  const auto d = temp_root() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

uint32_t gid(DType t) { return quant::ggml_from_dtype(t).value(); }

// A source tensor: its values are already representable in `type`, so they are exactly what the tool reads.
struct Src {
  std::string name;
  DType type;
  Shape shape;
  std::vector<float> values;
};

Src make_src(const std::string& name, DType type, Shape shape, uint64_t seed) {
  return {name, type, shape, test::rounded(type, test::randn(static_cast<size_t>(shape.numel()), seed, 0.5f))};
}

Status add(GgufWriter& w, const Src& s) {
  return w.add_tensor(s.name, gid(s.type), s.shape, test::to_bytes(s.type, s.values));
}

// What quantize + dequantize of the source gives, compared with the output byte for byte and value for value.
void expect_quantized_from(const GgufFile& out, const std::string& name, DType want, const std::vector<float>& src) {
  SCOPED_TRACE(name);
  const auto* t = out.tensor(name);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->dtype, want) << "got " << t->type_name;
  const int64_t n = t->numel;
  ASSERT_EQ(static_cast<size_t>(n), src.size());
  std::vector<uint8_t> ref(dtype_storage_bytes(want, n).value());
  ASSERT_TRUE(quant::quantize(want, src.data(), n, ref.data(), ref.size()).is_ok());
  auto bytes = out.tensor_data(name);
  ASSERT_TRUE(bytes.is_ok());
  ASSERT_EQ(bytes->size(), ref.size());
  EXPECT_EQ(std::memcmp(bytes->data(), ref.data(), ref.size()), 0) << "bytes differ from quant::quantize";
  std::vector<float> ref_f(static_cast<size_t>(n));
  ASSERT_TRUE(quant::dequantize(want, ref.data(), ref.size(), ref_f.data(), n).is_ok());
  auto deq = out.dequantize_tensor(name);
  ASSERT_TRUE(deq.is_ok()) << deq.status().to_string();
  EXPECT_EQ(std::memcmp(deq->data(), ref_f.data(), ref_f.size() * 4), 0) << "dequantized values differ";
}

void expect_kept(const GgufFile& out, const Src& s) {
  SCOPED_TRACE(s.name);
  const auto* t = out.tensor(s.name);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, s.type);
  EXPECT_EQ(t->shape, s.shape);
  const auto want = test::to_bytes(s.type, s.values);
  auto bytes = out.tensor_data(s.name);
  ASSERT_TRUE(bytes.is_ok());
  ASSERT_EQ(bytes->size(), want.size());
  EXPECT_EQ(std::memcmp(bytes->data(), want.data(), want.size()), 0);
}

Result<io::QuantizeResult> quantize(const fs::path& in, const fs::path& out, const std::string& type,
                                    std::optional<io::QuantRecipe> recipe = std::nullopt, bool dry_run = false) {
  QuantizeOptions o;
  o.type = type;
  o.recipe = recipe;
  o.threads = 2;
  o.dry_run = dry_run;
  return io::quantize_model(in.string(), out.string(), o);
}

std::map<std::string, std::string> types_of(const io::QuantizeResult& r) {
  std::map<std::string, std::string> m;
  for (const auto& t : r.tensors) m[t.name] = std::string(quant::ggml_type_info(t.ggml_type)->name);
  return m;
}

// ---- GGUF input, every type -----------------------------------------------------------------------------------------

struct MixedModel {
  std::vector<Src> t;
  MixedModel() {
    t.push_back(make_src("token_embd.weight", DType::F16, Shape{64, 256}, 1));
    t.push_back(make_src("blk.0.attn_norm.weight", DType::F32, Shape{256}, 2));
    t.push_back(make_src("blk.0.attn_q.weight", DType::BF16, Shape{96, 256}, 3));
    t.push_back(make_src("blk.0.ffn_down.weight", DType::F32, Shape{16, 512}, 4));
    t.push_back(make_src("blk.0.odd.weight", DType::F32, Shape{8, 100}, 5));              // 100: no whole blocks
    t.push_back(make_src("blk.0.ffn_gate_inp.weight", DType::F32, Shape{4, 256}, 6));     // a router: kept by name
    t.push_back(make_src("blk.0.ffn_up_exps.weight", DType::F16, Shape{2, 16, 256}, 7));  // 3-D expert stack
    t.push_back(make_src("blk.0.attn_q.bias", DType::F16, Shape{96}, 8));
  }
  GgufWriter writer() const {
    GgufWriter w(64);
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.block_count", 1);
    w.set_u32("general.file_type", 1);
    w.set_f32("llama.rope.freq_base", 500000.0f);
    w.set_array_string("tokenizer.ggml.tokens", {"<s>", "a", "b"});
    w.set_array_i32("test.ints", {1, -2, 3});
    for (const auto& s : t) EXPECT_TRUE(add(w, s).is_ok()) << s.name;
    return w;
  }
};

TEST(QuantizeTool, GgufEveryTypeMatchesTheReferenceQuantizer) {
  const auto dir = temp_dir("every_type");
  MixedModel m;
  ASSERT_TRUE(m.writer().write((dir / "in.gguf").string()).is_ok());
  const std::vector<std::pair<std::string, DType>> targets = {
      {"Q4_0", DType::Q4_0}, {"Q4_1", DType::Q4_1}, {"Q5_0", DType::Q5_0},     {"Q5_1", DType::Q5_1},
      {"Q8_0", DType::Q8_0}, {"Q2_K", DType::Q2_K}, {"Q3_K", DType::Q3_K},     {"Q4_K", DType::Q4_K},
      {"q5_k", DType::Q5_K}, {"Q6_K", DType::Q6_K}, {"IQ4_NL", DType::IQ4_NL}, {"MXFP4", DType::MXFP4},
      {"F16", DType::F16},   {"BF16", DType::BF16}, {"F32", DType::F32}};
  for (const auto& [name, type] : targets) {
    SCOPED_TRACE(name);
    const auto out = dir / (name + ".gguf");
    auto r = quantize(dir / "in.gguf", out, name);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->input_format, "gguf");
    auto f = GgufFile::open(out.string());
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->alignment(), 64u);  // the source's
    for (const auto& t : f->tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
    EXPECT_EQ(f->data_offset() % 64, 0u);
    ASSERT_EQ(f->tensors().size(), m.t.size());
    for (size_t i = 0; i < m.t.size(); ++i) {
      EXPECT_EQ(f->tensors()[i].name, m.t[i].name);  // file order kept
      EXPECT_EQ(f->tensors()[i].shape, m.t[i].shape);
    }
    const int64_t block = dtype_info(type).block_elems;
    for (const auto& s : m.t) {
      const bool matrix = s.shape.rank() >= 2 && s.name != "blk.0.ffn_gate_inp.weight" && s.shape.back() % block == 0;
      if (matrix && s.type != type)
        expect_quantized_from(*f, s.name, type, s.values);
      else
        expect_kept(*f, s);  // 1-D, router, rows not whole blocks, or already of the target type
    }
    if (block > 1) {
      EXPECT_EQ(f->tensor("blk.0.odd.weight")->dtype, DType::F32);  // 100 wide: never whole blocks
    }
    // Metadata: copied, with the file type and quantization version of the output.
    EXPECT_EQ(f->architecture(), "llama");
    EXPECT_EQ(f->get<uint32_t>("llama.block_count").value(), 1u);
    EXPECT_EQ(f->get<float>("llama.rope.freq_base").value(), 500000.0f);
    EXPECT_EQ(f->get<std::vector<std::string>>("tokenizer.ggml.tokens").value(),
              (std::vector<std::string>{"<s>", "a", "b"}));
    EXPECT_EQ(f->get<std::vector<int32_t>>("test.ints").value(), (std::vector<int32_t>{1, -2, 3}));
    EXPECT_EQ(f->get<uint32_t>("general.quantization_version").value(), 2u);
    const auto target = io::parse_quant_target(name).value();
    EXPECT_EQ(f->get<uint32_t>("general.file_type").value(), target.file_type);
    EXPECT_EQ(r->file_bytes, fs::file_size(out));
    EXPECT_FALSE(fs::exists(out.string() + ".part"));
  }
}

TEST(QuantizeTool, FileTypesAreLlamaCppNumbers) {
  const std::map<std::string, uint32_t> want = {
      {"F32", 0},        {"F16", 1},     {"Q4_0", 2},    {"Q4_1", 3},    {"Q8_0", 7},    {"Q5_0", 8},
      {"Q5_1", 9},       {"Q2_K", 10},   {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13}, {"Q4_K_S", 14},
      {"Q4_K_M", 15},    {"Q5_K_S", 16}, {"Q5_K_M", 17}, {"Q6_K", 18},   {"IQ4_NL", 25}, {"BF16", 32},
      {"MXFP4_MOE", 38}, {"Q4_K", 15},   {"Q5_K", 17},   {"Q3_K", 12}};
  for (const auto& [name, ft] : want) {
    auto t = io::parse_quant_target(name);
    ASSERT_TRUE(t.is_ok()) << name << ": " << t.status().to_string();
    EXPECT_EQ(t->file_type, ft) << name;
    EXPECT_TRUE(quant::can_quantize(t->default_type)) << name;
    const bool mixture = name.find("_K_") != std::string::npos || name == "MXFP4_MOE";
    EXPECT_EQ(t->mixture, mixture) << name;
    EXPECT_EQ(t->recipe, mixture ? io::QuantRecipe::Llama : io::QuantRecipe::Pure) << name;
  }
  for (const char* bad : {"Q8_K", "Q8_1", "IQ4_XS", "Q9_0", "", "q4_k_x"}) {
    auto t = io::parse_quant_target(bad);
    EXPECT_EQ(t.status().code(), StatusCode::InvalidArgument) << bad;
  }
  EXPECT_NE(io::parse_quant_target("Q9_0").status().message().find("Q4_K_M"), std::string::npos);
}

// ---- llama.cpp mixtures -------------------------------------------------------------------------------------------

struct LlamaSpec {
  int layers = 12;
  int64_t embd = 256, ff = 512, vocab = 64, heads = 4, kv_heads = 1;
  bool output = true;
};

// A llama-shaped GGUF (F16 matrices, F32 norms); its values by tensor name in `values`.
void write_llama(const fs::path& path, const LlamaSpec& sp, std::map<std::string, Src>* values = nullptr) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", static_cast<uint32_t>(sp.layers));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(sp.heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(sp.kv_heads));
  uint64_t seed = 100;
  const int64_t kv = sp.embd / sp.heads * sp.kv_heads;
  std::vector<Src> ts;
  ts.push_back(make_src("token_embd.weight", DType::F16, Shape{sp.vocab, sp.embd}, seed++));
  for (int l = 0; l < sp.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    ts.push_back(make_src(b + "attn_norm.weight", DType::F32, Shape{sp.embd}, seed++));
    ts.push_back(make_src(b + "attn_q.weight", DType::F16, Shape{sp.embd, sp.embd}, seed++));
    ts.push_back(make_src(b + "attn_k.weight", DType::F16, Shape{kv, sp.embd}, seed++));
    ts.push_back(make_src(b + "attn_v.weight", DType::F16, Shape{kv, sp.embd}, seed++));
    ts.push_back(make_src(b + "attn_output.weight", DType::F16, Shape{sp.embd, sp.embd}, seed++));
    ts.push_back(make_src(b + "ffn_norm.weight", DType::F32, Shape{sp.embd}, seed++));
    ts.push_back(make_src(b + "ffn_gate.weight", DType::F16, Shape{sp.ff, sp.embd}, seed++));
    ts.push_back(make_src(b + "ffn_up.weight", DType::F16, Shape{sp.ff, sp.embd}, seed++));
    ts.push_back(make_src(b + "ffn_down.weight", DType::F16, Shape{sp.embd, sp.ff}, seed++));
  }
  ts.push_back(make_src("output_norm.weight", DType::F32, Shape{sp.embd}, seed++));
  if (sp.output) ts.push_back(make_src("output.weight", DType::F16, Shape{sp.vocab, sp.embd}, seed++));
  for (const auto& s : ts) {
    ASSERT_TRUE(add(w, s).is_ok()) << s.name;
    if (values) (*values)[s.name] = s;
  }
  ASSERT_TRUE(w.write(path.string()).is_ok());
}

// The expected type of every tensor of the llama model, from per-role rules written out here.
std::map<std::string, std::string> expected(const LlamaSpec& sp, const std::string& base, const std::string& output,
                                            const std::string& embd, const std::map<int, std::string>& attn_v,
                                            const std::map<int, std::string>& ffn_down,
                                            const std::string& attn_output = "") {
  std::map<std::string, std::string> m;
  m["token_embd.weight"] = embd;
  m["output_norm.weight"] = "f32";
  if (sp.output) m["output.weight"] = output;
  for (int l = 0; l < sp.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    m[b + "attn_norm.weight"] = m[b + "ffn_norm.weight"] = "f32";
    m[b + "attn_q.weight"] = m[b + "attn_k.weight"] = m[b + "ffn_gate.weight"] = m[b + "ffn_up.weight"] = base;
    m[b + "attn_output.weight"] = attn_output.empty() ? base : attn_output;
    m[b + "attn_v.weight"] = attn_v.count(l) ? attn_v.at(l) : base;
    m[b + "ffn_down.weight"] = ffn_down.count(l) ? ffn_down.at(l) : base;
  }
  return m;
}

std::map<int, std::string> layers(std::initializer_list<int> ls, const std::string& t) {
  std::map<int, std::string> m;
  for (int l : ls) m[l] = t;
  return m;
}

TEST(QuantizeTool, Q4KMRecipeFollowsLlamaCpp) {
  const auto dir = temp_dir("q4km");
  LlamaSpec sp;  // 12 layers: llama.cpp's use_more_bits(i, 12) holds for layers 0, 3, 6, 9, 10 and 11
  std::map<std::string, Src> v;
  write_llama(dir / "in.gguf", sp, &v);
  auto r = quantize(dir / "in.gguf", dir / "out.gguf", "Q4_K_M");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const auto more = layers({0, 3, 6, 9, 10, 11}, "q6_K");
  EXPECT_EQ(types_of(*r), expected(sp, "q4_K", "q6_K", "q4_K", more, more));
  auto f = GgufFile::open((dir / "out.gguf").string());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->get<uint32_t>("general.file_type").value(), 15u);
  for (const auto& [name, want] : types_of(*r)) {
    const auto t = dtype_from_name(want).value();
    if (t == DType::F32)
      expect_kept(*f, v.at(name));
    else
      expect_quantized_from(*f, name, t, v.at(name).values);
  }

  // Tied embeddings (no output.weight): the token embeddings take the output rule.
  LlamaSpec tied = sp;
  tied.output = false;
  write_llama(dir / "tied.gguf", tied);
  auto rt = quantize(dir / "tied.gguf", dir / "tied_out.gguf", "Q4_K_M", std::nullopt, true);
  ASSERT_TRUE(rt.is_ok()) << rt.status().to_string();
  EXPECT_EQ(types_of(*rt), expected(tied, "q4_K", "", "q6_K", more, more));
  EXPECT_FALSE(fs::exists(dir / "tied_out.gguf"));  // a dry run writes nothing
}

TEST(QuantizeTool, OtherMixturesFollowLlamaCpp) {
  const auto dir = temp_dir("mixtures");
  LlamaSpec sp;  // 12 layers, 4 heads sharing 1 kv head (n_gqa 4)
  write_llama(dir / "in.gguf", sp);
  const auto more = [](const std::string& t) { return layers({0, 3, 6, 9, 10, 11}, t); };
  auto plan = [&](const std::string& type, std::optional<io::QuantRecipe> recipe = std::nullopt) {
    auto r = quantize(dir / "in.gguf", dir / "unused.gguf", type, recipe, true);
    EXPECT_TRUE(r.is_ok()) << type << ": " << r.status().to_string();
    return r ? types_of(*r) : std::map<std::string, std::string>{};
  };
  EXPECT_EQ(plan("Q4_K_S"), expected(sp, "q4_K", "q6_K", "q4_K", layers({0, 1, 2, 3}, "q5_K"), layers({0}, "q5_K")));
  EXPECT_EQ(plan("Q5_K_M"), expected(sp, "q5_K", "q6_K", "q5_K", more("q6_K"), more("q6_K")));
  EXPECT_EQ(plan("Q5_K_S"), expected(sp, "q5_K", "q6_K", "q5_K", {}, {}));
  EXPECT_EQ(plan("Q3_K_M"), expected(sp, "q3_K", "q6_K", "q3_K",
                                     {{0, "q5_K"},
                                      {1, "q5_K"},
                                      {2, "q4_K"},
                                      {3, "q4_K"},
                                      {4, "q4_K"},
                                      {5, "q4_K"},
                                      {6, "q4_K"},
                                      {7, "q4_K"},
                                      {8, "q4_K"},
                                      {9, "q4_K"},
                                      {10, "q4_K"},
                                      {11, "q4_K"}},
                                     layers({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, "q4_K"), "q4_K"));
  EXPECT_EQ(plan("Q3_K_L"), expected(sp, "q3_K", "q6_K", "q3_K", layers({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, "q5_K"),
                                     layers({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, "q5_K"), "q5_K"));
  // Plain types under the llama recipe: llama.cpp's Q2_K (n_gqa 4: attn_v q4_K), Q4_0 (output q6_K), Q8_0 (output
  // stays q8_0), IQ4_NL (n_gqa 4: attn_v q5_K; first eighth of ffn_down q5_K), MXFP4_MOE without experts (q8_0).
  const auto all = [](const std::string& t) { return layers({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, t); };
  EXPECT_EQ(plan("Q2_K", io::QuantRecipe::Llama),
            expected(sp, "q2_K", "q6_K", "q2_K", all("q4_K"), all("q3_K"), "q3_K"));
  EXPECT_EQ(plan("Q4_0", io::QuantRecipe::Llama), expected(sp, "q4_0", "q6_K", "q4_0", {}, {}));
  EXPECT_EQ(plan("Q8_0", io::QuantRecipe::Llama), expected(sp, "q8_0", "q8_0", "q8_0", {}, {}));
  EXPECT_EQ(plan("IQ4_NL", io::QuantRecipe::Llama),
            expected(sp, "iq4_nl", "q6_K", "iq4_nl", all("q5_K"), layers({0}, "q5_K")));
  EXPECT_EQ(plan("MXFP4_MOE"), expected(sp, "q8_0", "q8_0", "q8_0", {}, {}));
  // Pure: one type everywhere, whatever the name.
  EXPECT_EQ(plan("Q4_K_M", io::QuantRecipe::Pure), expected(sp, "q4_K", "q4_K", "q4_K", {}, {}));
  EXPECT_EQ(plan("Q4_0"), expected(sp, "q4_0", "q4_0", "q4_0", {}, {}));
}

TEST(QuantizeTool, RowsThatAreNotWholeBlocksFallBackOrStay) {
  const auto dir = temp_dir("fallback");
  LlamaSpec sp;
  sp.ff = 288;  // ffn_down rows of 288: not whole 256-blocks, whole 32-blocks
  std::map<std::string, Src> v;
  write_llama(dir / "in.gguf", sp, &v);
  // llama recipe: llama.cpp's fallback (q6_K -> q8_0, q4_K -> q5_0).
  auto r = quantize(dir / "in.gguf", dir / "out.gguf", "Q4_K_M");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto down = layers({0, 1, 2, 4, 5, 7, 8}, "q5_0");
  for (int l : {3, 6, 9, 10, 11}) down[l] = "q8_0";
  down[0] = "q8_0";
  EXPECT_EQ(types_of(*r), expected(sp, "q4_K", "q6_K", "q4_K", layers({0, 3, 6, 9, 10, 11}, "q6_K"), down));
  auto f = GgufFile::open((dir / "out.gguf").string());
  ASSERT_TRUE(f.is_ok());
  expect_quantized_from(*f, "blk.3.ffn_down.weight", DType::Q8_0, v.at("blk.3.ffn_down.weight").values);
  expect_quantized_from(*f, "blk.1.ffn_down.weight", DType::Q5_0, v.at("blk.1.ffn_down.weight").values);
  for (const auto& t : r->tensors)
    if (t.name == "blk.1.ffn_down.weight") {
      EXPECT_NE(t.note.find("fallback"), std::string::npos) << t.note;
    }

  // Pure: such tensors stay in their source type (f16 here), bytes untouched.
  auto p = quantize(dir / "in.gguf", dir / "pure.gguf", "Q4_K");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  auto fp = GgufFile::open((dir / "pure.gguf").string());
  ASSERT_TRUE(fp.is_ok());
  for (int l = 0; l < sp.layers; ++l) expect_kept(*fp, v.at("blk." + std::to_string(l) + ".ffn_down.weight"));
  expect_quantized_from(*fp, "blk.0.ffn_up.weight", DType::Q4_K, v.at("blk.0.ffn_up.weight").values);
}

// ---- safetensors input ---------------------------------------------------------------------------------------------

struct StT {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

void write_safetensors(const fs::path& p, const std::vector<StT>& ts) {
  std::string h = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::vector<uint8_t> data;
  for (const auto& t : ts) {
    h += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i) h += ',';
      h += std::to_string(t.shape[i]);
    }
    h +=
        "],\"data_offsets\":[" + std::to_string(data.size()) + "," + std::to_string(data.size() + t.data.size()) + "]}";
    data.insert(data.end(), t.data.begin(), t.data.end());
  }
  h += "}";
  while (h.size() % 8) h += ' ';
  std::ofstream f(p, std::ios::binary);
  const uint64_t n = h.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(h.data(), static_cast<std::streamsize>(h.size()));
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

StT st_of(const Src& s) {
  std::vector<int64_t> shape(s.shape.data(), s.shape.data() + s.shape.rank());
  const char* dt = s.type == DType::F32 ? "F32" : s.type == DType::F16 ? "F16" : "BF16";
  return {s.name, dt, shape, test::to_bytes(s.type, s.values)};
}

// llama.cpp's converter reshapes rows as (heads, 2, head_dim / 2) and swaps the last two axes.
std::vector<float> permute_rows(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t heads) {
  std::vector<float> out(w.size());
  const int64_t hd = rows / heads;
  int64_t o = 0;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < hd / 2; ++i)
      for (int64_t j = 0; j < 2; ++j, ++o)
        std::memcpy(&out[o * cols], &w[(h * hd + j * (hd / 2) + i) * cols], cols * sizeof(float));
  return out;
}

TEST(QuantizeTool, SafetensorsLlamaNamesMappedAndQkPermuted) {
  const auto dir = temp_dir("st_llama");
  const int64_t embd = 256, heads = 4, kv_heads = 2, hd = 64, ff = 512, vocab = 64;
  std::vector<Src> s = {
      make_src("model.embed_tokens.weight", DType::BF16, Shape{vocab, embd}, 1),
      make_src("lm_head.weight", DType::BF16, Shape{vocab, embd}, 2),
      make_src("model.norm.weight", DType::BF16, Shape{embd}, 3),
  };
  for (int l = 0; l < 2; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    uint64_t seed = 10 + 20 * static_cast<uint64_t>(l);
    s.push_back(make_src(b + "self_attn.q_proj.weight", DType::BF16, Shape{embd, embd}, seed++));
    s.push_back(make_src(b + "self_attn.k_proj.weight", DType::BF16, Shape{kv_heads * hd, embd}, seed++));
    s.push_back(make_src(b + "self_attn.v_proj.weight", DType::BF16, Shape{kv_heads * hd, embd}, seed++));
    s.push_back(make_src(b + "self_attn.o_proj.weight", DType::BF16, Shape{embd, embd}, seed++));
    s.push_back(make_src(b + "self_attn.q_proj.bias", DType::F32, Shape{embd}, seed++));
    s.push_back(make_src(b + "mlp.gate_proj.weight", DType::BF16, Shape{ff, embd}, seed++));
    s.push_back(make_src(b + "mlp.up_proj.weight", DType::BF16, Shape{ff, embd}, seed++));
    s.push_back(make_src(b + "mlp.down_proj.weight", DType::BF16, Shape{embd, ff}, seed++));
    s.push_back(make_src(b + "input_layernorm.weight", DType::BF16, Shape{embd}, seed++));
    s.push_back(make_src(b + "post_attention_layernorm.weight", DType::BF16, Shape{embd}, seed++));
    s.push_back(make_src(b + "self_attn.rotary_emb.inv_freq", DType::F32, Shape{hd / 2}, seed++));
  }
  std::vector<StT> st;
  std::map<std::string, Src> by;
  for (const auto& x : s) {
    st.push_back(st_of(x));
    by[x.name] = x;
  }
  write_safetensors(dir / "model.safetensors", st);
  write_file(dir / "config.json",
             "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":256,"
             "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"num_hidden_layers\":2,\"intermediate_size\":512,"
             "\"max_position_embeddings\":2048,\"rope_theta\":500000.0,\"rms_norm_eps\":1e-05,\"vocab_size\":64,"
             "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0}}");
  auto r = quantize(dir, dir / "out.gguf", "Q8_0");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->input_format, "safetensors");
  EXPECT_TRUE(r->names_mapped);
  EXPECT_EQ(r->architecture, "llama");
  bool rope_warned = false;
  for (const auto& w : r->warnings) rope_warned |= w.find("llama3") != std::string::npos;
  EXPECT_TRUE(rope_warned);

  auto f = GgufFile::open((dir / "out.gguf").string());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  std::vector<std::string> names;
  for (const auto& t : f->tensors()) names.push_back(t.name);
  const std::vector<std::string> want_names = {"token_embd.weight",      "blk.0.attn_k.weight",
                                               "blk.0.attn_norm.weight", "blk.0.attn_output.weight",
                                               "blk.0.attn_q.bias",      "blk.0.attn_q.weight",
                                               "blk.0.attn_v.weight",    "blk.0.ffn_down.weight",
                                               "blk.0.ffn_gate.weight",  "blk.0.ffn_norm.weight",
                                               "blk.0.ffn_up.weight",    "blk.1.attn_k.weight",
                                               "blk.1.attn_norm.weight", "blk.1.attn_output.weight",
                                               "blk.1.attn_q.bias",      "blk.1.attn_q.weight",
                                               "blk.1.attn_v.weight",    "blk.1.ffn_down.weight",
                                               "blk.1.ffn_gate.weight",  "blk.1.ffn_norm.weight",
                                               "blk.1.ffn_up.weight",    "output.weight",
                                               "output_norm.weight"};  // inv_freq dropped
  EXPECT_EQ(names, want_names);

  EXPECT_EQ(f->architecture(), "llama");
  EXPECT_EQ(f->get<uint32_t>("llama.block_count").value(), 2u);
  EXPECT_EQ(f->get<uint32_t>("llama.embedding_length").value(), 256u);
  EXPECT_EQ(f->get<uint32_t>("llama.feed_forward_length").value(), 512u);
  EXPECT_EQ(f->get<uint32_t>("llama.context_length").value(), 2048u);
  EXPECT_EQ(f->get<uint32_t>("llama.attention.head_count").value(), 4u);
  EXPECT_EQ(f->get<uint32_t>("llama.attention.head_count_kv").value(), 2u);
  EXPECT_EQ(f->get<uint32_t>("llama.rope.dimension_count").value(), 64u);
  EXPECT_EQ(f->get<uint32_t>("llama.vocab_size").value(), 64u);
  EXPECT_EQ(f->get<float>("llama.rope.freq_base").value(), 500000.0f);
  EXPECT_EQ(f->get<float>("llama.attention.layer_norm_rms_epsilon").value(), 1e-5f);
  EXPECT_EQ(f->get<uint32_t>("general.file_type").value(), 7u);
  EXPECT_EQ(f->find("mlxn.tensor_names"), nullptr);

  for (int l = 0; l < 2; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".", g = "blk." + std::to_string(l) + ".";
    const auto& q = by.at(b + "self_attn.q_proj.weight");
    const auto& k = by.at(b + "self_attn.k_proj.weight");
    expect_quantized_from(*f, g + "attn_q.weight", DType::Q8_0, permute_rows(q.values, embd, embd, heads));
    expect_quantized_from(*f, g + "attn_k.weight", DType::Q8_0, permute_rows(k.values, kv_heads * hd, embd, kv_heads));
    expect_quantized_from(*f, g + "attn_v.weight", DType::Q8_0, by.at(b + "self_attn.v_proj.weight").values);
    expect_quantized_from(*f, g + "ffn_down.weight", DType::Q8_0, by.at(b + "mlp.down_proj.weight").values);
    // The q bias is permuted like the rows it belongs to; norms stay bf16.
    auto bias = f->dequantize_tensor(g + "attn_q.bias");
    ASSERT_TRUE(bias.is_ok());
    EXPECT_EQ(*bias, permute_rows(by.at(b + "self_attn.q_proj.bias").values, embd, 1, heads));
    Src norm = by.at(b + "input_layernorm.weight");
    norm.name = g + "attn_norm.weight";
    expect_kept(*f, norm);
  }
  expect_quantized_from(*f, "token_embd.weight", DType::Q8_0, by.at("model.embed_tokens.weight").values);
  expect_quantized_from(*f, "output.weight", DType::Q8_0, by.at("lm_head.weight").values);

  // --hf-names: names (and rows) as in the checkpoint.
  QuantizeOptions o;
  o.type = "Q8_0";
  o.keep_hf_names = true;
  auto rk = io::quantize_model(dir.string(), (dir / "hf.gguf").string(), o);
  ASSERT_TRUE(rk.is_ok()) << rk.status().to_string();
  auto fk = GgufFile::open((dir / "hf.gguf").string());
  ASSERT_TRUE(fk.is_ok());
  EXPECT_EQ(fk->get<std::string>("mlxn.tensor_names").value(), "huggingface");
  expect_quantized_from(*fk, "model.layers.0.self_attn.q_proj.weight", DType::Q8_0,
                        by.at("model.layers.0.self_attn.q_proj.weight").values);
  EXPECT_NE(fk->tensor("model.layers.0.self_attn.rotary_emb.inv_freq"), nullptr);
}

TEST(QuantizeTool, SafetensorsShardedQwen3) {
  const auto dir = temp_dir("st_qwen3");
  const Src embd = make_src("model.embed_tokens.weight", DType::BF16, Shape{64, 256}, 1);
  const Src q = make_src("model.layers.0.self_attn.q_proj.weight", DType::BF16, Shape{256, 256}, 2);
  const Src qn = make_src("model.layers.0.self_attn.q_norm.weight", DType::BF16, Shape{64}, 3);
  const Src kn = make_src("model.layers.0.self_attn.k_norm.weight", DType::BF16, Shape{64}, 4);
  const Src qb = make_src("model.layers.0.self_attn.q_proj.bias", DType::BF16, Shape{256}, 5);
  const Src head = make_src("lm_head.weight", DType::F16, Shape{64, 256}, 6);
  write_safetensors(dir / "model-00001-of-00002.safetensors", {st_of(embd), st_of(q), st_of(qn)});
  write_safetensors(dir / "model-00002-of-00002.safetensors", {st_of(kn), st_of(qb), st_of(head)});
  std::string wm;
  for (const auto* x : {&embd, &q, &qn}) wm += "\"" + x->name + "\":\"model-00001-of-00002.safetensors\",";
  for (const auto* x : {&kn, &qb, &head}) wm += "\"" + x->name + "\":\"model-00002-of-00002.safetensors\",";
  wm.pop_back();
  write_file(dir / "model.safetensors.index.json", "{\"metadata\":{},\"weight_map\":{" + wm + "}}");
  write_file(dir / "config.json",
             "{\"architectures\":[\"Qwen3ForCausalLM\"],\"hidden_size\":256,\"num_attention_heads\":4,"
             "\"num_key_value_heads\":4,\"head_dim\":64,\"num_hidden_layers\":1,\"rms_norm_eps\":1e-06}");
  auto r = quantize(dir, dir / "out.gguf", "Q4_0");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto f = GgufFile::open((dir / "out.gguf").string());
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->architecture(), "qwen3");
  EXPECT_EQ(f->get<uint32_t>("qwen3.attention.key_length").value(), 64u);
  expect_quantized_from(*f, "blk.0.attn_q.weight", DType::Q4_0, q.values);  // qwen3 keeps rows as they are
  auto bias = f->dequantize_tensor("blk.0.attn_q.bias");
  ASSERT_TRUE(bias.is_ok());
  EXPECT_EQ(*bias, qb.values);
  for (const char* n : {"blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight"}) {
    ASSERT_NE(f->tensor(n), nullptr) << n;
    EXPECT_EQ(f->tensor(n)->dtype, DType::BF16);
  }
  expect_quantized_from(*f, "output.weight", DType::Q4_0, head.values);
  expect_quantized_from(*f, "token_embd.weight", DType::Q4_0, embd.values);
}

TEST(QuantizeTool, UnknownArchitectureKeepsHfNamesAndRecipeStillApplies) {
  const auto dir = temp_dir("st_gemma");
  std::vector<StT> st;
  st.push_back(st_of(make_src("model.embed_tokens.weight", DType::BF16, Shape{64, 256}, 1)));
  st.push_back(st_of(make_src("lm_head.weight", DType::BF16, Shape{64, 256}, 2)));
  for (int l = 0; l < 8; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    st.push_back(st_of(make_src(b + "self_attn.v_proj.weight", DType::BF16, Shape{32, 256}, 10 + l)));
    st.push_back(st_of(make_src(b + "mlp.down_proj.weight", DType::BF16, Shape{32, 256}, 20 + l)));
    st.push_back(st_of(make_src(b + "mlp.up_proj.weight", DType::BF16, Shape{32, 256}, 30 + l)));
  }
  write_safetensors(dir / "model.safetensors", st);
  write_file(dir / "config.json",
             "{\"architectures\":[\"GemmaForCausalLM\"],\"model_type\":\"gemma\","
             "\"num_hidden_layers\":8}");
  auto r = quantize(dir / "model.safetensors", dir / "out.gguf", "Q4_K_M");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_FALSE(r->names_mapped);
  auto types = types_of(*r);
  EXPECT_EQ(types["lm_head.weight"], "q6_K");
  EXPECT_EQ(types["model.embed_tokens.weight"], "q4_K");
  for (int l = 0; l < 8; ++l) {  // use_more_bits(i, 8): layers 0, 3, 6, 7
    const bool more = l == 0 || l == 3 || l == 6 || l == 7;
    const std::string b = "model.layers." + std::to_string(l) + ".";
    EXPECT_EQ(types[b + "self_attn.v_proj.weight"], more ? "q6_K" : "q4_K") << l;
    EXPECT_EQ(types[b + "mlp.down_proj.weight"], more ? "q6_K" : "q4_K") << l;
    EXPECT_EQ(types[b + "mlp.up_proj.weight"], "q4_K") << l;
  }
  auto f = GgufFile::open((dir / "out.gguf").string());
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->architecture(), "gemma");
  EXPECT_EQ(f->get<std::string>("mlxn.tensor_names").value(), "huggingface");
}

TEST(QuantizeTool, MlxAffineNeedsAllowRequantize) {
  const auto dir = temp_dir("st_mlx");
  const int64_t rows = 8, cols = 128;
  const auto w = test::randn(static_cast<size_t>(rows * cols), 5);
  auto a = quant::affine_quantize({4, 64}, rows, cols, w.data(), DType::BF16).value();
  write_safetensors(dir / "model.safetensors",
                    {{"model.layers.0.mlp.up_proj.weight", "U32", {rows, cols * 4 / 32}, a.packed},
                     {"model.layers.0.mlp.up_proj.scales", "BF16", {rows, cols / 64}, a.scales},
                     {"model.layers.0.mlp.up_proj.biases", "BF16", {rows, cols / 64}, a.biases},
                     st_of(make_src("model.norm.weight", DType::BF16, Shape{cols}, 3))});
  write_file(dir / "config.json",
             "{\"architectures\":[\"Qwen3ForCausalLM\"],\"num_hidden_layers\":1,"
             "\"quantization\":{\"group_size\":64,\"bits\":4}}");
  auto no = quantize(dir, dir / "out.gguf", "Q8_0");
  EXPECT_EQ(no.status().code(), StatusCode::Unsupported);
  EXPECT_NE(no.status().message().find("allow-requantize"), std::string::npos) << no.status().message();
  EXPECT_FALSE(fs::exists(dir / "out.gguf"));

  QuantizeOptions o;
  o.type = "Q8_0";
  o.allow_requantize = true;
  auto r = io::quantize_model(dir.string(), (dir / "out.gguf").string(), o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto f = GgufFile::open((dir / "out.gguf").string());
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(f->tensors().size(), 2u);  // scales and biases folded into the weight
  auto m = io::SafetensorsModel::open(dir.string());
  ASSERT_TRUE(m.is_ok());
  expect_quantized_from(*f, "blk.0.ffn_up.weight", DType::Q8_0,
                        m->dequantize_affine("model.layers.0.mlp.up_proj.weight").value());
}

// ---- requantize, threads, progress, errors
// ---------------------------------------------------------------------------

TEST(QuantizeTool, RequantizeAndThreadCountsGiveTheSameBytes) {
  const auto dir = temp_dir("threads");
  const Src big = make_src("blk.0.ffn_up.weight", DType::F32, Shape{512, 4096}, 9);  // several row chunks
  GgufWriter w;
  ASSERT_TRUE(add(w, big).is_ok());
  std::vector<uint8_t> q8(dtype_storage_bytes(DType::Q8_0, 256 * 64).value());
  const auto q8_src = test::randn(256 * 64, 10);
  ASSERT_TRUE(quant::quantize(DType::Q8_0, q8_src.data(), 256 * 64, q8.data(), q8.size()).is_ok());
  ASSERT_TRUE(w.add_tensor("blk.0.attn_q.weight", gid(DType::Q8_0), Shape{64, 256}, q8).is_ok());
  ASSERT_TRUE(w.write((dir / "in.gguf").string()).is_ok());

  auto no = quantize(dir / "in.gguf", dir / "x.gguf", "Q4_K");
  EXPECT_EQ(no.status().code(), StatusCode::Unsupported);
  EXPECT_NE(no.status().message().find("blk.0.attn_q.weight"), std::string::npos) << no.status().message();
  EXPECT_NE(no.status().message().find("q8_0"), std::string::npos) << no.status().message();

  std::vector<std::vector<char>> files;
  for (int threads : {1, 3, 8}) {
    QuantizeOptions o;
    o.type = "Q4_K";
    o.threads = threads;
    o.allow_requantize = true;
    const auto out = dir / ("t" + std::to_string(threads) + ".gguf");
    auto r = io::quantize_model((dir / "in.gguf").string(), out.string(), o);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    std::ifstream f(out, std::ios::binary);
    files.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  EXPECT_EQ(files[0], files[1]);
  EXPECT_EQ(files[0], files[2]);
  auto f = GgufFile::open((dir / "t1.gguf").string());
  ASSERT_TRUE(f.is_ok());
  expect_quantized_from(*f, big.name, DType::Q4_K, big.values);
  std::vector<float> deq(256 * 64);
  ASSERT_TRUE(quant::dequantize(DType::Q8_0, q8.data(), q8.size(), deq.data(), 256 * 64).is_ok());
  expect_quantized_from(*f, "blk.0.attn_q.weight", DType::Q4_K, deq);
}

TEST(QuantizeTool, ProgressReportsEveryTensor) {
  const auto dir = temp_dir("progress");
  MixedModel m;
  ASSERT_TRUE(m.writer().write((dir / "in.gguf").string()).is_ok());
  QuantizeOptions o;
  o.type = "Q8_0";
  size_t done = 0;
  uint64_t last = 0, total = 0;
  o.progress = [&](const io::QuantizeProgress& p) {
    EXPECT_EQ(p.count, m.t.size());
    EXPECT_LE(p.source_bytes_done, p.source_bytes_total);
    EXPECT_GE(p.source_bytes_done, last);
    last = p.source_bytes_done;
    total = p.source_bytes_total;
    if (p.tensor_done) {
      EXPECT_EQ(p.index, done);
      EXPECT_EQ(p.tensor->name, m.t[done].name);
      ++done;
    }
  };
  auto r = io::quantize_model((dir / "in.gguf").string(), (dir / "out.gguf").string(), o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(done, m.t.size());
  EXPECT_EQ(last, total);
  EXPECT_EQ(total, r->source_bytes);
}

TEST(QuantizeTool, ErrorsAreStatusesAndLeaveNoFile) {
  const auto dir = temp_dir("errors");
  MixedModel m;
  const auto in = dir / "in.gguf";
  ASSERT_TRUE(m.writer().write(in.string()).is_ok());

  auto missing = quantize(dir / "nope.gguf", dir / "out.gguf", "Q4_0");
  EXPECT_EQ(missing.status().code(), StatusCode::NotFound);
  EXPECT_NE(missing.status().message().find("nope.gguf"), std::string::npos);
  EXPECT_EQ(quantize(in, dir / "out.gguf", "Q4_Z").status().code(), StatusCode::InvalidArgument);
  EXPECT_EQ(quantize(in, dir / "out.gguf", "IQ4_XS").status().code(), StatusCode::InvalidArgument);
  EXPECT_EQ(quantize(in, dir / "out.gguf", "Q8_K").status().code(), StatusCode::InvalidArgument);
  EXPECT_EQ(quantize(in, in, "Q4_0").status().code(), StatusCode::InvalidArgument);  // would clobber the input
  EXPECT_EQ(quantize(in, dir, "Q4_0").status().code(), StatusCode::InvalidArgument);
  auto nodir = quantize(in, dir / "no" / "such" / "dir.gguf", "Q4_0");
  EXPECT_EQ(nodir.status().code(), StatusCode::IoError);
  EXPECT_FALSE(fs::exists(dir / "out.gguf"));

  // A truncated GGUF and a file that is neither format: FormatError, not a crash.
  {
    std::ifstream f(in, std::ios::binary);
    std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::ofstream(dir / "cut.gguf", std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size() / 2));
  }
  EXPECT_EQ(quantize(dir / "cut.gguf", dir / "out.gguf", "Q4_0").status().code(), StatusCode::FormatError);
  write_file(dir / "junk.bin", "this is not a model file at all");
  EXPECT_FALSE(quantize(dir / "junk.bin", dir / "out.gguf", "Q4_0").is_ok());
  EXPECT_FALSE(quantize(dir / "empty_dir_does_not_exist", dir / "out.gguf", "Q4_0").is_ok());
  // Integer matrices are copied; block types this library cannot decode are an error even with --allow-requantize.
  {
    GgufWriter w;
    std::vector<uint8_t> ints(4 * 256 * 4, 1), iq2(66 * 4, 0);
    ASSERT_TRUE(w.add_tensor("blk.0.idx.weight", gid(DType::I32), Shape{4, 256}, ints).is_ok());
    ASSERT_TRUE(w.write((dir / "ints.gguf").string()).is_ok());
    auto ri = quantize(dir / "ints.gguf", dir / "ints_out.gguf", "Q4_0");
    ASSERT_TRUE(ri.is_ok()) << ri.status().to_string();
    EXPECT_EQ(ri->tensors[0].ggml_type, gid(DType::I32));
    ASSERT_TRUE(w.add_tensor("blk.0.iq.weight", 16, Shape{4, 256}, iq2).is_ok());  // IQ2_XXS
    ASSERT_TRUE(w.write((dir / "iq.gguf").string()).is_ok());
    QuantizeOptions o;
    o.type = "Q4_0";
    o.allow_requantize = true;
    auto rq = io::quantize_model((dir / "iq.gguf").string(), (dir / "iq_out.gguf").string(), o);
    EXPECT_EQ(rq.status().code(), StatusCode::Unsupported);
    EXPECT_NE(rq.status().message().find("iq2_xxs"), std::string::npos) << rq.status().message();
    EXPECT_FALSE(fs::exists(dir / "iq_out.gguf"));
  }
  fs::create_directories(dir / "empty");
  EXPECT_EQ(quantize(dir / "empty", dir / "out.gguf", "Q4_0").status().code(), StatusCode::NotFound);
  EXPECT_FALSE(fs::exists(dir / "out.gguf"));
  EXPECT_FALSE(fs::exists(dir / "out.gguf.part"));
}

// ---- the streaming writer and synthetic models ----------------------------------------------------------------------

TEST(QuantizeTool, StreamWriterMatchesGgufWriterByteForByte) {
  MixedModel m;
  const auto want = m.writer().bytes();  // alignment 64: general.alignment is its first key, as in the stream writer
  const auto dir = temp_dir("stream");
  io::GgufStreamWriter w(64);
  w.metadata().set_string("general.architecture", "llama");
  w.metadata().set_u32("llama.block_count", 1);
  w.metadata().set_u32("general.file_type", 1);
  w.metadata().set_f32("llama.rope.freq_base", 500000.0f);
  w.metadata().set_array_string("tokenizer.ggml.tokens", {"<s>", "a", "b"});
  w.metadata().set_array_i32("test.ints", {1, -2, 3});
  for (const auto& s : m.t) ASSERT_TRUE(w.add_tensor_info(s.name, gid(s.type), s.shape).is_ok());
  EXPECT_FALSE(w.add_tensor_info("token_embd.weight", 0, Shape{1}).is_ok());  // duplicate
  ASSERT_TRUE(w.open((dir / "s.gguf").string()).is_ok());
  for (const auto& s : m.t) {
    const auto b = test::to_bytes(s.type, s.values);
    const size_t half = b.size() / 3;  // in pieces
    ASSERT_TRUE(w.write(std::span<const uint8_t>(b).subspan(0, half)).is_ok());
    ASSERT_TRUE(w.write(std::span<const uint8_t>(b).subspan(half)).is_ok());
  }
  EXPECT_FALSE(w.write(std::vector<uint8_t>(1)).is_ok());  // past the end
  auto size = w.close();
  ASSERT_TRUE(size.is_ok()) << size.status().to_string();
  std::ifstream f(dir / "s.gguf", std::ios::binary);
  std::vector<uint8_t> got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(*size, got.size());
  EXPECT_EQ(got, want);

  io::GgufStreamWriter short_w;
  ASSERT_TRUE(short_w.add_tensor_info("a", 0, Shape{4}).is_ok());
  ASSERT_TRUE(short_w.open((dir / "short.gguf").string()).is_ok());
  ASSERT_TRUE(short_w.write(std::vector<uint8_t>(8)).is_ok());
  EXPECT_FALSE(short_w.close().is_ok());  // 8 of 16 bytes
}

TEST(QuantizeTool, SyntheticModelForBenchLoad) {
  const auto dir = temp_dir("synth");
  const uint64_t want = uint64_t{12} << 20;
  uint64_t last = 0;
  auto s = io::write_synthetic_gguf((dir / "s.gguf").string(), want, 7, [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last);
    last = done;
    EXPECT_LE(done, total);
  });
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(last, s->bytes);
  EXPECT_NEAR(static_cast<double>(s->bytes), static_cast<double>(want), 0.01 * static_cast<double>(want));
  auto f = GgufFile::open((dir / "s.gguf").string());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->tensors().size(), s->tensors);
  EXPECT_EQ(s->file_bytes, fs::file_size(dir / "s.gguf"));
  std::set<std::string> types;
  uint64_t bytes = 0;
  for (const auto& t : f->tensors()) {
    types.insert(std::string(t.type_name));
    bytes += t.nbytes;
    auto v = f->dequantize_tensor(t.name);
    ASSERT_TRUE(v.is_ok()) << t.name;
    for (float x : *v) ASSERT_TRUE(std::isfinite(x)) << t.name;
    auto b = f->load_tensor(t.name, Device::cpu());
    ASSERT_TRUE(b.is_ok()) << t.name;
  }
  EXPECT_EQ(bytes, s->bytes);
  EXPECT_EQ(types, (std::set<std::string>{"f32", "q4_0", "q8_0", "f16"}));
  EXPECT_EQ(f->architecture(), "mlxn-synthetic");
}

}  // namespace
}  // namespace mlxn
