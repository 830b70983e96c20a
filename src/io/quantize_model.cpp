#include "mlxn/io/quantize_model.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <new>
#include <thread>

#include "mlxn/io/gguf.h"
#include "mlxn/io/safetensors.h"
#include "mlxn/quant/ggml_type.h"
#include "mlxn/quant/quant.h"

namespace mlxn::io {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kGgufMagic = 0x46554747;   // "GGUF" as a little-endian u32
constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION: the block layouts of include/mlxn/quant/blocks.h

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

uint32_t ggml_id(DType t) { return quant::ggml_from_dtype(t).value(); }

// ---- targets ------------------------------------------------------------------------------------------------------

// clang-format off
// llama_ftype numbers (llama.h): what general.file_type records and what the Llama recipe's rules switch on.
namespace ftype {
constexpr uint32_t F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9, Q2_K = 10, Q3_K_S = 11,
                   Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15, Q5_K_S = 16, Q5_K_M = 17, Q6_K = 18,
                   IQ4_NL = 25, BF16 = 32, MXFP4_MOE = 38;
}

struct TargetRow {
  const char* name;
  DType type;
  uint32_t file_type;
  bool mixture;
};
// A plain K type stands for its _M file type, as llama-quantize's aliases do (Q4_K = Q4_K_M).
constexpr TargetRow kTargets[] = {
    {"F32", DType::F32, ftype::F32, false},         {"F16", DType::F16, ftype::F16, false},
    {"BF16", DType::BF16, ftype::BF16, false},      {"Q4_0", DType::Q4_0, ftype::Q4_0, false},
    {"Q4_1", DType::Q4_1, ftype::Q4_1, false},      {"Q5_0", DType::Q5_0, ftype::Q5_0, false},
    {"Q5_1", DType::Q5_1, ftype::Q5_1, false},      {"Q8_0", DType::Q8_0, ftype::Q8_0, false},
    {"Q2_K", DType::Q2_K, ftype::Q2_K, false},      {"Q3_K", DType::Q3_K, ftype::Q3_K_M, false},
    {"Q4_K", DType::Q4_K, ftype::Q4_K_M, false},    {"Q5_K", DType::Q5_K, ftype::Q5_K_M, false},
    {"Q6_K", DType::Q6_K, ftype::Q6_K, false},      {"IQ4_NL", DType::IQ4_NL, ftype::IQ4_NL, false},
    {"MXFP4", DType::MXFP4, ftype::MXFP4_MOE, false},
    {"Q3_K_S", DType::Q3_K, ftype::Q3_K_S, true},   {"Q3_K_M", DType::Q3_K, ftype::Q3_K_M, true},
    {"Q3_K_L", DType::Q3_K, ftype::Q3_K_L, true},   {"Q4_K_S", DType::Q4_K, ftype::Q4_K_S, true},
    {"Q4_K_M", DType::Q4_K, ftype::Q4_K_M, true},   {"Q5_K_S", DType::Q5_K, ftype::Q5_K_S, true},
    {"Q5_K_M", DType::Q5_K, ftype::Q5_K_M, true},   {"MXFP4_MOE", DType::MXFP4, ftype::MXFP4_MOE, true},
};
// clang-format on

// ---- tensor categories and llama.cpp's rules ----------------------------------------------------------------------

// Broad roles, recognised from llama.cpp names and, for checkpoints whose names were kept, Hugging Face names.
// clang-format off
enum class Category { TokenEmbd, Output, AttnQkv, AttnKvB, AttnV, AttnK, AttnQ, AttnOutput, FfnUp, FfnGate, FfnDown,
                      Other };
// clang-format on

Category category_of(std::string_view n) {
  if (n == "output.weight" || n == "lm_head.weight") return Category::Output;
  if (n == "token_embd.weight" || n == "per_layer_token_embd.weight" || ends_with(n, "embed_tokens.weight"))
    return Category::TokenEmbd;
  if (contains(n, "attn_qkv.weight") || contains(n, ".qkv_proj.weight") || contains(n, "query_key_value.weight"))
    return Category::AttnQkv;
  if (contains(n, "attn_kv_b.weight") || contains(n, ".kv_b_proj.weight")) return Category::AttnKvB;
  if (contains(n, "attn_v.weight") || contains(n, ".v_proj.weight")) return Category::AttnV;
  if (contains(n, "attn_k.weight") || contains(n, ".k_proj.weight")) return Category::AttnK;
  if (contains(n, "attn_q.weight") || contains(n, ".q_proj.weight")) return Category::AttnQ;
  if (contains(n, "attn_output.weight") || contains(n, ".o_proj.weight")) return Category::AttnOutput;
  if (contains(n, "ffn_up") || contains(n, ".up_proj")) return Category::FfnUp;
  if (contains(n, "ffn_gate") || contains(n, ".gate_proj")) return Category::FfnGate;
  if (contains(n, "ffn_down") || contains(n, ".down_proj")) return Category::FfnDown;
  return Category::Other;
}
bool is_attn_v_like(Category c) { return c == Category::AttnV || c == Category::AttnQkv || c == Category::AttnKvB; }

// llama.cpp's tensor_allows_quantization, by name and rank: matrices (and 3-D expert stacks) named "...weight", minus
// the small or sensitive ones it leaves alone. Hugging Face spellings of the same exclusions are added.
bool allows_quantization(std::string_view n, int rank) {
  if (rank < 2 || !ends_with(n, "weight")) return false;
  static constexpr std::string_view kKeep[] = {
      "_norm.weight", "norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
      "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
      "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight",
      "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight",
      "time_mix_g1.weight", "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
      "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_",
      ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
      // Hugging Face: MoE routers, learned position embeddings, convolutions.
      ".mlp.gate.weight", ".router.", "embed_positions", "position_embedding", "conv1d"};
  for (auto k : kKeep)
    if (contains(n, k)) return false;
  return n != "position_embd.weight" && n != "token_types.weight";
}

// clang-format off
// The layer of "blk.12.attn_q.weight" / "model.layers.12.self_attn.q_proj.weight"; -1 for tensors outside layers.
int64_t layer_of(std::string_view n) {
  size_t p;
  if (n.substr(0, 4) == "blk.") p = 4;
  else if (n.substr(0, 7) == "layers.") p = 7;
  else if (auto q = n.find(".layers."); q != std::string_view::npos) p = q + 8;
  else return -1;
  int64_t v = 0;
  size_t digits = 0;
  while (p < n.size() && std::isdigit(static_cast<unsigned char>(n[p])) && digits < 9) {
    v = v * 10 + (n[p++] - '0');
    ++digits;
  }
  return digits > 0 && p < n.size() && n[p] == '.' ? v : -1;
}
// clang-format on

struct ModelFacts {
  std::string arch;
  int64_t n_layer = 0, n_head = 0, n_head_kv = 0, n_expert = 0;
  bool tied_embeddings = true;  // no output.weight: the token embeddings double as the output matrix
  int64_t n_attn_v = 0;         // attn_v-like tensors
};

bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// clang-format off
// llama.cpp's llama_tensor_get_type_impl for the file types offered here (the IQ1/IQ2/IQ3/TQ branches are not;
// nor is its 70B-model attn_v bump, which needs the model size class). `i_attn_v`: this tensor's index among the
// attn_v-like tensors; `i_down`: its layer for ffn_down.
DType llama_rule(uint32_t ft, DType t, const ModelFacts& m, Category cat, const Shape& shape, int64_t i_attn_v,
                 int64_t i_down) {
  const bool falcon = m.arch == "falcon";
  const int64_t n_gqa = m.n_head > 0 && m.n_head_kv > 0 ? m.n_head / m.n_head_kv : 1;
  const int64_t nl = std::max<int64_t>(m.n_layer, 1);
  if (cat == Category::Output || (m.tied_embeddings && cat == Category::TokenEmbd)) {
    if (ft == ftype::MXFP4_MOE) return DType::Q8_0;
    if (falcon || shape.back() % dtype_info(t).block_elems != 0) return DType::Q8_0;
    return t != DType::Q8_0 ? DType::Q6_K : t;
  }
  if (ft == ftype::MXFP4_MOE) {
    const int64_t ne2 = shape.rank() >= 3 ? shape[shape.rank() - 3] : 1;  // experts
    return ne2 > 1 ? DType::MXFP4 : DType::Q8_0;
  }
  if (cat == Category::TokenEmbd) return t;
  if (is_attn_v_like(cat)) {
    if (ft == ftype::Q2_K) t = n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (ft == ftype::Q3_K_M) t = i_attn_v < 2 ? DType::Q5_K : DType::Q4_K;
    else if (ft == ftype::Q3_K_L) t = DType::Q5_K;
    else if (ft == ftype::IQ4_NL && n_gqa >= 4) t = DType::Q5_K;
    else if ((ft == ftype::Q4_K_M || ft == ftype::Q5_K_M) && use_more_bits(i_attn_v, m.n_attn_v)) t = DType::Q6_K;
    else if (ft == ftype::Q4_K_S && i_attn_v < 4) t = DType::Q5_K;
    if (m.n_expert == 8) t = DType::Q8_0;
    return t;
  }
  if (cat == Category::AttnK) return m.n_expert == 8 ? DType::Q8_0 : t;
  if (cat == Category::FfnDown) {
    const int64_t i = i_down;
    if (ft == ftype::Q2_K) t = DType::Q3_K;
    else if (ft == ftype::Q3_K_M)
      t = i < nl / 16 ? DType::Q5_K : (!falcon || use_more_bits(i, nl)) ? DType::Q4_K : DType::Q3_K;
    else if (ft == ftype::Q3_K_L) t = falcon ? DType::Q4_K : DType::Q5_K;
    else if (ft == ftype::Q4_K_M) {
      if (falcon) t = i < nl / 16 ? DType::Q6_K : use_more_bits(i, nl) ? DType::Q5_K : DType::Q4_K;
      else if (use_more_bits(i, nl)) t = DType::Q6_K;
    } else if (i < nl / 8 && ft == ftype::IQ4_NL) t = DType::Q5_K;
    else if (ft == ftype::Q5_K_M && use_more_bits(i, nl)) t = DType::Q6_K;
    else if (ft == ftype::Q4_K_S && !falcon && i < nl / 8) t = DType::Q5_K;
    return t;
  }
  if (cat == Category::AttnOutput) {
    if (!falcon) {
      if (m.n_expert == 8) {
        if (ft == ftype::Q2_K || ft == ftype::Q3_K_S || ft == ftype::Q3_K_M || ft == ftype::IQ4_NL ||
            ft == ftype::Q4_K_S || ft == ftype::Q4_K_M)
          t = DType::Q5_K;
      } else if (ft == ftype::Q2_K) t = DType::Q3_K;
      else if (ft == ftype::Q3_K_M) t = DType::Q4_K;
      else if (ft == ftype::Q3_K_L) t = DType::Q5_K;
    } else if (ft == ftype::Q3_K_L) t = DType::Q4_K;
  }
  return t;
}

// llama.cpp's tensor_type_fallback: a 256-block type on rows that are not whole blocks moves to a 32-block type.
std::optional<DType> llama_fallback(DType t) {
  switch (t) {
    case DType::Q2_K: case DType::Q3_K: return DType::Q4_0;
    case DType::Q4_K: return DType::Q5_0;
    case DType::Q5_K: return DType::Q5_1;
    case DType::Q6_K: return DType::Q8_0;
    case DType::IQ4_XS: return DType::IQ4_NL;
    default: return std::nullopt;
  }
}
// clang-format on

// ---- sources -----------------------------------------------------------------------------------------------------

struct Source {
  std::string name;         // in the output
  std::string source_name;  // in the input
  Shape shape;
  std::string type_name;
  std::optional<uint32_t> ggml_type;  // the source storage as a GGML type (copyable verbatim); empty: not copyable
  std::optional<DType> dtype;         // decodable to f32 by quant::dequantize
  std::span<const uint8_t> bytes;
  int64_t permute_heads = 0;  // > 0: reorder rows as llama.cpp's converter does for q/k (rotary pairing)
  std::string affine_module;  // MLX affine weight, dequantized through the checkpoint
  int64_t affine_bits = 0;
};

struct Input {
  std::string format;
  std::optional<GgufFile> gguf;
  std::optional<SafetensorsModel> st;
  std::vector<Source> tensors;
  ModelFacts facts;
  uint32_t alignment = 32;
  bool names_mapped = false;
  std::vector<std::string> warnings;
};

bool is_float_source(const Source& s) {
  return s.dtype &&
         (*s.dtype == DType::F32 || *s.dtype == DType::F16 || *s.dtype == DType::BF16 || *s.dtype == DType::F64);
}

bool looks_like_gguf(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[4] = {};
  return f.read(m, 4) && std::memcmp(m, "GGUF", 4) == 0;
}

Result<Input> open_gguf(const std::string& path) {
  Input in;
  in.format = "gguf";
  MLXN_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  if (auto n = f.get<uint32_t>("split.count"); n && *n > 1)
    return unsupported("quantize", path, " is part of a split GGUF (", *n,
                       " parts): merge the parts first (llama-gguf-split --merge)");
  in.alignment = static_cast<uint32_t>(f.alignment());
  in.facts.arch = f.architecture();
  const std::string a = in.facts.arch;
  auto get_int = [&](const std::string& key) -> int64_t {
    auto v = f.get<int64_t>(key);
    return v ? *v : 0;
  };
  in.facts.n_layer = get_int(a + ".block_count");
  in.facts.n_head = get_int(a + ".attention.head_count");
  in.facts.n_head_kv = get_int(a + ".attention.head_count_kv");
  in.facts.n_expert = get_int(a + ".expert_count");
  if (in.facts.n_head_kv == 0) in.facts.n_head_kv = in.facts.n_head;
  for (const auto& t : f.tensors()) {
    Source s;
    s.name = s.source_name = t.name;
    s.shape = t.shape;
    s.type_name = std::string(t.type_name);
    s.ggml_type = t.ggml_type;
    s.dtype = t.dtype;
    MLXN_ASSIGN_OR_RETURN(s.bytes, f.tensor_data(t.name));
    in.tensors.push_back(std::move(s));
  }
  in.gguf = std::move(f);
  return in;
}

std::optional<uint32_t> ggml_from_st(StDtype t) {
  switch (t) {
    case StDtype::F32:
      return 0;
    case StDtype::F16:
      return 1;
    case StDtype::BF16:
      return 30;
    case StDtype::F64:
      return 28;
    case StDtype::I8:
      return 24;
    case StDtype::I16:
      return 25;
    case StDtype::I32:
      return 26;
    case StDtype::I64:
      return 27;
    default:
      return std::nullopt;
  }
}

// Hugging Face names of the llama family (Llama, Mistral, Qwen2, Qwen3) to llama.cpp's. nullopt: no mapping;
// "" : a tensor llama.cpp's converter drops (rotary inverse frequencies).
std::optional<std::string> map_hf_name(const std::string& n) {
  if (n == "model.embed_tokens.weight") return "token_embd.weight";
  if (n == "model.norm.weight") return "output_norm.weight";
  if (n == "lm_head.weight") return "output.weight";
  static const std::string kLayers = "model.layers.";
  if (n.compare(0, kLayers.size(), kLayers) != 0) return std::nullopt;
  const int64_t layer = layer_of(n);
  if (layer < 0) return std::nullopt;
  const std::string rest = n.substr(kLayers.size() + std::to_string(layer).size() + 1);
  if (rest == "self_attn.rotary_emb.inv_freq") return std::string();
  static const std::pair<const char*, const char*> kMap[] = {
      {"self_attn.q_proj", "attn_q"},      {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},      {"self_attn.o_proj", "attn_output"},
      {"self_attn.q_norm", "attn_q_norm"}, {"self_attn.k_norm", "attn_k_norm"},
      {"input_layernorm", "attn_norm"},    {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},       {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
  };
  for (const auto& [hf, gg] : kMap) {
    const std::string h(hf);
    if (rest == h + ".weight") return "blk." + std::to_string(layer) + "." + gg + ".weight";
    if (rest == h + ".bias") return "blk." + std::to_string(layer) + "." + gg + ".bias";
  }
  return std::nullopt;
}

// config.json architectures[0] -> llama.cpp architecture, for the families whose names map_hf_name covers.
std::string llama_family_arch(const std::string& hf_arch) {
  if (hf_arch == "LlamaForCausalLM" || hf_arch == "MistralForCausalLM") return "llama";
  if (hf_arch == "Qwen2ForCausalLM") return "qwen2";
  if (hf_arch == "Qwen3ForCausalLM") return "qwen3";
  return "";
}

int64_t config_int(const std::optional<JsonConfig>& c, const char* key) {
  if (!c) return 0;
  auto v = c->get<int64_t>(key);
  return v ? *v : 0;
}

Result<Input> open_safetensors(const std::string& path, const QuantizeOptions& opt) {
  Input in;
  in.format = "safetensors";
  MLXN_ASSIGN_OR_RETURN(SafetensorsModel m, SafetensorsModel::open(path));
  const auto& cfg = m.config();
  std::string hf_arch;
  if (cfg) {
    if (auto a = cfg->get<std::vector<std::string>>("architectures"); a && !a->empty()) hf_arch = (*a)[0];
  }
  const std::string family = llama_family_arch(hf_arch);
  const bool map = !family.empty() && !opt.keep_hf_names;
  if (map) {
    in.facts.arch = family;
  } else if (cfg) {
    if (auto t = cfg->get<std::string>("model_type"); t) in.facts.arch = *t;
  }
  in.facts.n_layer = config_int(cfg, "num_hidden_layers");
  in.facts.n_head = config_int(cfg, "num_attention_heads");
  in.facts.n_head_kv = config_int(cfg, "num_key_value_heads");
  if (in.facts.n_head_kv == 0) in.facts.n_head_kv = in.facts.n_head;
  in.facts.n_expert = std::max(config_int(cfg, "num_local_experts"), config_int(cfg, "num_experts"));
  in.names_mapped = map;

  for (const auto& name : m.tensor_names()) {
    const SafetensorsTensorInfo* t = m.tensor(name);
    Source s;
    s.source_name = name;
    // MLX affine modules: the packed weight stands for the module; its scales and biases are folded into it.
    if ((ends_with(name, ".scales") || ends_with(name, ".biases")) &&
        m.tensor(name.substr(0, name.size() - 7) + ".weight") != nullptr &&
        m.is_affine(name.substr(0, name.size() - 7)))
      continue;
    if (ends_with(name, ".weight") && m.is_affine(name)) {
      MLXN_ASSIGN_OR_RETURN(AffineWeight a, m.load_affine(name, Device::cpu()));
      s.affine_module = name;
      s.affine_bits = a.spec.bits;
      s.shape = Shape{a.rows, a.cols};
      s.type_name = "mlx-affine-" + std::to_string(a.spec.bits) + "bit";
    } else {
      s.shape = t->shape;
      s.type_name = std::string(st_dtype_info(t->dtype).name);
      for (auto& c : s.type_name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));  // as ggml spells it
      s.ggml_type = ggml_from_st(t->dtype);
      if (s.ggml_type) s.dtype = quant::dtype_from_ggml(*s.ggml_type);
      MLXN_ASSIGN_OR_RETURN(s.bytes, m.shard_of(name)->tensor_data(name));
    }
    s.name = name;
    if (map) {
      auto mapped = map_hf_name(name);
      if (mapped && mapped->empty()) continue;  // dropped, as llama.cpp's converter does
      if (mapped)
        s.name = *mapped;
      else
        in.warnings.push_back("no llama.cpp name for '" + name + "': kept as is");
      // llama.cpp's llama architecture rotates interleaved pairs; Hugging Face's q/k rows pair the two halves of
      // each head. Its converter permutes the rows of q (n_head heads) and k (n_head_kv heads); so do we.
      if (family == "llama" && mapped) {
        if (contains(*mapped, ".attn_q.")) s.permute_heads = in.facts.n_head;
        if (contains(*mapped, ".attn_k.")) s.permute_heads = in.facts.n_head_kv;
        if (s.permute_heads > 0) {
          const int64_t rows = s.shape.rank() > 0 ? s.shape[0] : 0;
          if (rows % (2 * s.permute_heads) != 0)
            return invalid_argument("quantize", "'", name, "' has ", rows, " rows, not a whole number of ",
                                    s.permute_heads,
                                    " heads of even size (num_attention_heads / "
                                    "num_key_value_heads in config.json)");
        } else if (contains(*mapped, ".attn_q.") || contains(*mapped, ".attn_k.")) {
          return invalid_argument("quantize", "config.json lacks num_attention_heads, needed to convert '", name, "'");
        }
      }
    }
    if (s.shape.rank() > 4)
      return unsupported("quantize", "'", name, "' has ", s.shape.rank(), " dimensions; GGUF holds at most 4");
    in.tensors.push_back(std::move(s));
  }
  if (in.tensors.empty()) return invalid_argument("quantize", path, " holds no tensors");

  // llama.cpp's order: token embeddings, then layer by layer, then the rest (output norm, output).
  auto key = [](const Source& s) {
    const int64_t l = layer_of(s.name);
    const int group = l >= 0 ? 1 : category_of(s.name) == Category::TokenEmbd ? 0 : 2;
    return std::make_tuple(group, l, s.name);
  };
  std::stable_sort(in.tensors.begin(), in.tensors.end(),
                   [&](const Source& a, const Source& b) { return key(a) < key(b); });
  if (!in.tensors.empty() && in.facts.n_layer == 0) {
    for (const auto& s : in.tensors) in.facts.n_layer = std::max(in.facts.n_layer, layer_of(s.name) + 1);
  }
  if (cfg && (cfg->has("rope_scaling.rope_type") || cfg->has("rope_scaling.type") || cfg->has("rope_scaling.factor"))) {
    auto t = cfg->get<std::string>("rope_scaling.rope_type");
    if (!t) t = cfg->get<std::string>("rope_scaling.type");
    in.warnings.push_back("config.json rope_scaling (" + (t ? *t : std::string("?")) +
                          ") is not converted: no rope scaling keys or rope_freqs tensor are written");
  }
  in.warnings.push_back("the tokenizer is not converted (no tokenizer.ggml.* keys)");
  in.st = std::move(m);
  return in;
}

// Metadata of the output: a GGUF source's keys (less alignment, split and file-type keys), or for safetensors the
// hyperparameters llama.cpp's converter writes for the llama family.
void write_metadata(const Input& in, const QuantTarget& target, const std::string& in_path, GgufWriter& w) {
  if (in.gguf) {
    for (const auto& kv : in.gguf->metadata()) {
      if (kv.key == "general.alignment" || kv.key == "general.file_type" || kv.key == "general.quantization_version" ||
          kv.key.compare(0, 6, "split.") == 0)
        continue;
      w.set_value(kv.key, kv.value);
    }
  } else {
    const auto& cfg = in.st->config();
    const std::string& a = in.facts.arch;
    if (!a.empty()) w.set_string("general.architecture", a);
    // A checkpoint is named by its directory.
    std::error_code ec;
    fs::path p = fs::absolute(in_path, ec).lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
    if (!fs::is_directory(p, ec)) p = p.parent_path();
    const std::string name = p.filename().string();
    if (!name.empty()) w.set_string("general.name", name);
    if (!in.names_mapped) w.set_string("mlxn.tensor_names", "huggingface");
    if (in.names_mapped && cfg) {
      auto u32 = [&](const std::string& key, const char* from) {
        if (auto v = cfg->get<int64_t>(from); v && *v >= 0 && *v <= 0xffffffffLL)
          w.set_u32(a + "." + key, static_cast<uint32_t>(*v));
      };
      auto f32 = [&](const std::string& key, const char* from) {
        if (auto v = cfg->get<double>(from); v) w.set_f32(a + "." + key, static_cast<float>(*v));
      };
      u32("context_length", "max_position_embeddings");
      u32("embedding_length", "hidden_size");
      u32("block_count", "num_hidden_layers");
      u32("feed_forward_length", "intermediate_size");
      u32("attention.head_count", "num_attention_heads");
      if (cfg->has("num_key_value_heads"))
        u32("attention.head_count_kv", "num_key_value_heads");
      else
        u32("attention.head_count_kv", "num_attention_heads");
      if (cfg->has("rope_theta")) f32("rope.freq_base", "rope_theta");
      f32("attention.layer_norm_rms_epsilon", "rms_norm_eps");
      const int64_t hidden = config_int(cfg, "hidden_size"), heads = config_int(cfg, "num_attention_heads");
      if (const int64_t hd = config_int(cfg, "head_dim"); hd > 0) {
        w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(hd));
        w.set_u32(a + ".attention.key_length", static_cast<uint32_t>(hd));
        w.set_u32(a + ".attention.value_length", static_cast<uint32_t>(hd));
      } else if (hidden > 0 && heads > 0) {
        w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(hidden / heads));
      }
      u32("vocab_size", "vocab_size");
    }
  }
  w.set_u32("general.quantization_version", kQuantizationVersion);
  w.set_u32("general.file_type", target.file_type);
}

// ---- planning ----------------------------------------------------------------------------------------------------

Result<uint64_t> storage_of(uint32_t ggml_type, const Shape& shape) {
  auto ti = quant::ggml_type_info(ggml_type);
  if (!ti) return invalid_argument("quantize", "unknown ggml type ", ggml_type);
  const int64_t n = shape.numel();
  if (n < 0) return invalid_argument("quantize", "bad shape ", shape);
  if (shape.rank() > 0 && shape.back() % ti->block_elems != 0)
    return invalid_argument("quantize", "rows of ", shape.back(), " are not whole ", ti->name, " blocks");
  return static_cast<uint64_t>(n / ti->block_elems) * static_cast<uint64_t>(ti->block_bytes);
}

Result<std::vector<QuantizedTensor>> plan(const Input& in, const QuantTarget& target, const QuantizeOptions& opt) {
  ModelFacts facts = in.facts;
  // Counters as llama.cpp keeps them: over the tensors in (layer, name) order.
  std::vector<size_t> order(in.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = in.tensors[a].name;
    const auto& y = in.tensors[b].name;
    return std::make_pair(layer_of(x), x) < std::make_pair(layer_of(y), y);
  });
  std::vector<int64_t> i_attn_v(in.tensors.size(), 0), i_down(in.tensors.size(), 0);
  int64_t n_v = 0, n_down = 0, max_layer = -1;
  for (size_t k : order) {
    const auto& s = in.tensors[k];
    const Category c = category_of(s.name);
    if (c == Category::Output) facts.tied_embeddings = false;
    max_layer = std::max(max_layer, layer_of(s.name));
    if (is_attn_v_like(c)) i_attn_v[k] = n_v++;
    if (c == Category::FfnDown && allows_quantization(s.name, s.shape.rank()))
      i_down[k] = facts.n_expert > 1 ? std::max<int64_t>(layer_of(s.name), 0) : n_down++;
  }
  facts.n_attn_v = n_v;
  if (facts.n_layer <= 0) facts.n_layer = max_layer + 1;

  const DType def = target.default_type;
  std::vector<QuantizedTensor> out;
  for (size_t k = 0; k < in.tensors.size(); ++k) {
    const Source& s = in.tensors[k];
    QuantizedTensor q;
    q.name = s.name;
    q.source_name = s.source_name;
    q.shape = s.shape;
    q.source_type = s.type_name;
    // MLX affine: the packed weight's size stands for the source.
    q.source_bytes =
        s.affine_module.empty() ? s.bytes.size() : static_cast<uint64_t>(s.shape.numel()) * s.affine_bits / 8;
    const bool affine = !s.affine_module.empty();
    bool quantize = allows_quantization(s.name, s.shape.rank());
    // Integer matrices stay as they are (and safetensors dtypes GGUF lacks fail below); block-quantized ones need
    // --allow-requantize, undecodable ones (IQ2_XXS, ...) fail.
    const bool plain_non_float =
        (s.dtype && !is_quantized(*s.dtype) && !is_float_source(s)) || (!affine && !s.ggml_type);
    if (plain_non_float) quantize = false;
    std::optional<DType> t;
    if (quantize) {
      if (!is_float_source(s) && !opt.allow_requantize) {
        return unsupported("quantize", "tensor '", s.source_name, "' is ", s.type_name,
                           ": quantize takes F32, F16 or BF16 weights (--allow-requantize dequantizes and "
                           "requantizes it, losing accuracy)");
      }
      if (!affine && !s.dtype)
        return unsupported("quantize", "tensor '", s.source_name, "' is ", s.type_name,
                           " which this library does not decode");
      t = def;
      if (target.recipe == QuantRecipe::Llama && is_quantized(def)) {
        t = llama_rule(target.file_type, def, facts, category_of(s.name), s.shape, i_attn_v[k], i_down[k]);
        if (*t != def) q.note = "llama.cpp rule";
      }
      const int64_t cols = s.shape.back();
      if (cols % dtype_info(*t).block_elems != 0) {
        const auto fb = target.recipe == QuantRecipe::Llama ? llama_fallback(*t) : std::nullopt;
        if (fb && cols % dtype_info(*fb).block_elems == 0) {
          q.note = "rows of " + std::to_string(cols) + " are not whole " + std::string(dtype_name(*t)) +
                   " blocks: llama.cpp fallback";
          t = *fb;
        } else {
          q.note =
              "kept: rows of " + std::to_string(cols) + " are not whole " + std::string(dtype_name(*t)) + " blocks";
          t.reset();
        }
      }
    } else if (s.shape.rank() < 2) {
      q.note = "kept: 1-D";
    } else if (allows_quantization(s.name, s.shape.rank())) {
      q.note = "kept: " + s.type_name + " is not a float type";
    } else {
      q.note = "kept: not quantized by name (norms, routers, position embeddings, ...)";
    }
    if (!t && affine) {
      if (!opt.allow_requantize)
        return unsupported("quantize", "tensor '", s.source_name, "' is ", s.type_name,
                           " (MLX affine): quantize takes F32, F16 or BF16 weights (--allow-requantize dequantizes "
                           "and requantizes it)");
      t = DType::F32;  // an affine triple has no GGUF form: dequantized
      q.note += q.note.empty() ? "dequantized to f32" : "; dequantized to f32";
    }
    if (t) {
      q.ggml_type = ggml_id(*t);
      // Same type as the source: copy rather than round-trip through f32.
      q.converted = affine || !s.ggml_type || *s.ggml_type != q.ggml_type;
    } else {
      if (!s.ggml_type)
        return unsupported("quantize", "tensor '", s.source_name, "' is ", s.type_name, ", which GGUF cannot hold");
      q.ggml_type = *s.ggml_type;
      q.converted = false;
    }
    MLXN_ASSIGN_OR_RETURN(q.bytes, storage_of(q.ggml_type, q.shape));
    if (!q.converted && !affine && q.bytes != s.bytes.size())
      return Status(StatusCode::Internal, detail::cat("[quantize] tensor '", s.source_name, "' has ", s.bytes.size(),
                                                      " bytes, expected ", q.bytes));
    if (s.permute_heads > 0) q.note += q.note.empty() ? "rows permuted for rope" : "; rows permuted for rope";
    out.push_back(std::move(q));
  }
  return out;
}

// ---- execution ---------------------------------------------------------------------------------------------------

// Source row of output row `r` under llama.cpp's q/k permutation: within each head of `hd` rows, output row 2i + j
// comes from row j * hd / 2 + i.
int64_t permuted_row(int64_t r, int64_t heads, int64_t rows) {
  if (heads <= 0) return r;
  const int64_t hd = rows / heads;
  const int64_t h = r / hd, local = r % hd;
  return h * hd + (local % 2) * (hd / 2) + local / 2;
}

struct Runner {
  const Input& in;
  const QuantizeOptions& opt;
  GgufStreamWriter* writer;  // null for a dry run
  Clock::time_point t0;
  uint64_t total_source = 0;
  uint64_t done_source = 0;
  uint64_t written = 0;
  size_t count = 0;
  Clock::time_point last_report;

  void report(size_t index, const QuantizedTensor& q, bool done, uint64_t partial) {
    if (!opt.progress) return;
    if (!done && Clock::now() - last_report < std::chrono::milliseconds(100)) return;
    last_report = Clock::now();
    QuantizeProgress p;
    p.index = index;
    p.count = count;
    p.tensor = &q;
    p.tensor_done = done;
    p.source_bytes_done = done_source + partial;
    p.source_bytes_total = total_source;
    p.bytes_written = written;
    p.seconds = seconds_since(t0);
    opt.progress(p);
  }

  Status emit(std::span<const uint8_t> b) {
    written += b.size();
    return writer ? writer->write(b) : Status::ok();
  }

  Status copy(size_t index, const Source& s, const QuantizedTensor& q) {
    if (s.permute_heads > 0) {
      const int64_t rows = s.shape[0];
      const size_t row_bytes = s.bytes.size() / static_cast<size_t>(rows);
      std::vector<uint8_t> buf(s.bytes.size());
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(buf.data() + r * row_bytes, s.bytes.data() + permuted_row(r, s.permute_heads, rows) * row_bytes,
                    row_bytes);
      return emit(buf);
    }
    constexpr size_t kPiece = size_t{64} << 20;
    for (size_t at = 0; at < s.bytes.size(); at += kPiece) {
      MLXN_TRY(emit(s.bytes.subspan(at, std::min(kPiece, s.bytes.size() - at))));
      report(index, q, false, at);
    }
    return Status::ok();
  }

  Status convert(size_t index, const Source& s, const QuantizedTensor& q) {
    const DType out_t = *quant::dtype_from_ggml(q.ggml_type);
    const int64_t cols = s.shape.back();
    const int64_t rows = cols > 0 ? s.shape.numel() / cols : 0;
    std::vector<float> affine;  // MLX affine: the whole matrix in f32
    if (!s.affine_module.empty()) {
      MLXN_ASSIGN_OR_RETURN(affine, in.st->dequantize_affine(s.affine_module));
      if (static_cast<int64_t>(affine.size()) != rows * cols)
        return Status(StatusCode::Internal, "[quantize] affine size mismatch for " + s.source_name);
    }
    const size_t in_row = rows > 0 && affine.empty() ? s.bytes.size() / static_cast<size_t>(rows) : 0;
    const size_t out_row = rows > 0 ? static_cast<size_t>(q.bytes / static_cast<uint64_t>(rows)) : 0;
    std::vector<uint8_t> out;
    try {
      out.resize(q.bytes);
    } catch (const std::bad_alloc&) {
      return Status(StatusCode::OutOfMemory,
                    detail::cat("[quantize] no memory for the ", q.bytes, " bytes of '", q.name, "'"));
    }
    const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(cols, 1));
    const int64_t n_chunks = (rows + chunk - 1) / chunk;
    int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::thread::hardware_concurrency());
    threads = static_cast<int>(std::clamp<int64_t>(n_chunks, 1, std::max(threads, 1)));

    std::atomic<int64_t> next{0}, rows_done{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    Status first_error;
    auto fail = [&](Status st) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.is_ok()) first_error = std::move(st);
      failed = true;
    };
    auto work = [&](bool reporter) {
      try {
        std::vector<float> f(static_cast<size_t>(chunk * cols));
        while (!failed) {
          const int64_t r0 = next.fetch_add(chunk);
          if (r0 >= rows) break;
          const int64_t n = std::min(chunk, rows - r0);
          for (int64_t r = r0; r < r0 + n;) {
            // Contiguous source rows go through one call; permuted rows one at a time.
            const int64_t src = permuted_row(r, s.permute_heads, rows);
            const int64_t run = s.permute_heads > 0 ? 1 : r0 + n - r;
            float* dst = f.data() + (r - r0) * cols;
            if (!affine.empty()) {
              std::memcpy(dst, affine.data() + src * cols, static_cast<size_t>(run * cols) * sizeof(float));
            } else {
              Status st = quant::dequantize(*s.dtype, s.bytes.data() + static_cast<size_t>(src) * in_row,
                                            static_cast<size_t>(run) * in_row, dst, run * cols);
              if (!st) return fail(st);
            }
            r += run;
          }
          Status st = quant::quantize(out_t, f.data(), n * cols, out.data() + static_cast<size_t>(r0) * out_row,
                                      static_cast<size_t>(n) * out_row);
          if (!st) return fail(st);
          rows_done += n;
          if (reporter) report(index, q, false, q.source_bytes * static_cast<uint64_t>(rows_done) / rows);
        }
      } catch (const std::exception& e) {
        fail(Status(StatusCode::OutOfMemory, std::string("[quantize] ") + e.what()));
      }
    };
    std::vector<std::thread> pool;
    try {
      for (int i = 1; i < threads; ++i) pool.emplace_back(work, false);
    } catch (const std::exception&) {
      // Fewer threads than asked for: the ones started and this one finish the work.
    }
    work(true);
    for (auto& t : pool) t.join();
    if (failed) return first_error.is_ok() ? Status(StatusCode::Internal, "[quantize] worker failed") : first_error;
    return emit(out);
  }
};

Status check_paths(const std::string& in, const std::string& out) {
  std::error_code ec;
  if (!fs::exists(in, ec)) return Status(StatusCode::NotFound, "[quantize] " + in + ": no such file or directory");
  if (out.empty()) return Status::ok();  // a dry run
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec))
    return invalid_argument("quantize", "the output ", out, " is the input");
  if (fs::is_directory(out, ec)) return invalid_argument("quantize", "the output ", out, " is a directory");
  return Status::ok();
}

}  // namespace

// ---- public API ----------------------------------------------------------------------------------------------------

std::string_view quant_recipe_name(QuantRecipe r) { return r == QuantRecipe::Pure ? "pure" : "llama"; }

std::optional<QuantRecipe> quant_recipe_from_name(std::string_view name) {
  const std::string u = upper(name);
  if (u == "PURE") return QuantRecipe::Pure;
  if (u == "LLAMA" || u == "LLAMA.CPP") return QuantRecipe::Llama;
  return std::nullopt;
}

std::string quant_target_names() {
  std::string s;
  for (const auto& t : kTargets) {
    if (!s.empty()) s += ' ';
    s += t.name;
  }
  return s;
}

Result<QuantTarget> parse_quant_target(std::string_view type, std::optional<QuantRecipe> recipe) {
  const std::string u = upper(type);
  for (const auto& t : kTargets) {
    if (u != t.name) continue;
    QuantTarget q;
    q.name = t.name;
    q.default_type = t.type;
    q.file_type = t.file_type;
    q.mixture = t.mixture;
    q.recipe = recipe.value_or(t.mixture ? QuantRecipe::Llama : QuantRecipe::Pure);
    if (!quant::can_quantize(q.default_type))
      return Status(StatusCode::Internal, "[quantize] no quantizer for " + q.name);
    return q;
  }
  if (u == "Q8_1" || u == "Q8_K")
    return invalid_argument("quantize", "--type ", type,
                            " is an activation format (matmul inputs), not a weight "
                            "format; use Q8_0");
  if (u == "IQ4_XS") return invalid_argument("quantize", "--type IQ4_XS has no reference quantizer here; use IQ4_NL");
  return invalid_argument("quantize", "unknown --type '", type, "'; one of: ", quant_target_names());
}

Result<QuantizeResult> quantize_model(const std::string& in_path, const std::string& out_path,
                                      const QuantizeOptions& opt) {
  const auto t0 = Clock::now();
  MLXN_ASSIGN_OR_RETURN(QuantTarget target, parse_quant_target(opt.type, opt.recipe));
  if (out_path.empty() && !opt.dry_run) return invalid_argument("quantize", "no output path");
  MLXN_TRY(check_paths(in_path, out_path));
  std::error_code ec;
  const bool gguf = !fs::is_directory(in_path, ec) && (ends_with(in_path, ".gguf") || looks_like_gguf(in_path));
  MLXN_ASSIGN_OR_RETURN(Input in, gguf ? open_gguf(in_path) : open_safetensors(in_path, opt));
  MLXN_ASSIGN_OR_RETURN(std::vector<QuantizedTensor> tensors, plan(in, target, opt));

  QuantizeResult res;
  res.input_format = in.format;
  res.architecture = in.facts.arch;
  res.target = target;
  res.names_mapped = in.names_mapped;
  res.warnings = in.warnings;
  for (const auto& t : tensors) {
    res.source_bytes += t.source_bytes;
    res.bytes += t.bytes;
  }

  const std::string part = out_path + ".part";
  std::optional<GgufStreamWriter> writer;
  if (!opt.dry_run) {
    writer.emplace(in.alignment);
    write_metadata(in, target, in_path, writer->metadata());
    for (const auto& t : tensors) MLXN_TRY(writer->add_tensor_info(t.name, t.ggml_type, t.shape));
    MLXN_TRY(writer->open(part));
  }
  Runner run{in,
             opt,
             writer ? &*writer : nullptr,
             t0,
             res.source_bytes,
             0,
             0,
             tensors.size(),
             Clock::now() - std::chrono::seconds(1)};
  auto run_all = [&]() -> Status {
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& q = tensors[i];
      run.report(i, q, false, 0);
      if (!opt.dry_run) MLXN_TRY(q.converted ? run.convert(i, in.tensors[i], q) : run.copy(i, in.tensors[i], q));
      run.done_source += q.source_bytes;
      run.report(i, q, true, 0);
    }
    return Status::ok();
  };
  Status st = run_all();
  if (st && writer) {
    auto size = writer->close();
    if (size)
      res.file_bytes = *size;
    else
      st = size.status();
    if (st) {
      fs::rename(part, out_path, ec);
      if (ec)
        st = Status(StatusCode::IoError, "[quantize] cannot rename " + part + " to " + out_path + ": " + ec.message());
    }
  }
  if (!st) {
    writer.reset();
    fs::remove(part, ec);
    return st;
  }
  res.tensors = std::move(tensors);
  res.seconds = seconds_since(t0);
  return res;
}

// ---- GgufStreamWriter ----------------------------------------------------------------------------------------------

// The metadata GgufWriter is built with alignment 1: its bytes() is then exactly the 24-byte header and the key/value
// section, with no padding, which open() splices into the real header.
GgufStreamWriter::GgufStreamWriter(uint32_t alignment) : meta_(1), alignment_(alignment == 0 ? 32 : alignment) {
  meta_.set_u32("general.alignment", alignment_);
}

GgufStreamWriter::~GgufStreamWriter() {
  if (f_) std::fclose(f_);
}

Status GgufStreamWriter::add_tensor_info(const std::string& name, uint32_t ggml_type, const Shape& shape) {
  if (f_) return invalid_argument("gguf_stream_writer", "tensor '", name, "' declared after open()");
  if (!shape.valid() || shape.rank() > 4)
    return invalid_argument("gguf_stream_writer", "tensor '", name, "' shape ", shape);
  for (const auto& i : infos_)
    if (i.name == name) return invalid_argument("gguf_stream_writer", "duplicate tensor '", name, "'");
  auto bytes = storage_of(ggml_type, shape);
  if (!bytes) return invalid_argument("gguf_stream_writer", "tensor '", name, "': ", bytes.status().message());
  infos_.push_back({name, ggml_type, shape, *bytes});
  return Status::ok();
}

Status GgufStreamWriter::put(const void* p, size_t n) {
  if (n != 0 && std::fwrite(p, 1, n, f_) != n)
    return Status(StatusCode::IoError, "[gguf_stream_writer] write to " + path_ + " failed: " + std::strerror(errno));
  pos_ += n;
  return Status::ok();
}

Status GgufStreamWriter::pad() {
  static const uint8_t zeros[64] = {};
  while (pos_ % alignment_ != 0) {
    const size_t n = std::min<uint64_t>(sizeof zeros, alignment_ - pos_ % alignment_);
    MLXN_TRY(put(zeros, n));
  }
  return Status::ok();
}

Status GgufStreamWriter::advance() {
  while (current_ < infos_.size() && written_ == infos_[current_].bytes) {
    MLXN_TRY(pad());
    ++current_;
    written_ = 0;
  }
  return Status::ok();
}

Status GgufStreamWriter::open(const std::string& path) {
  if (f_) return invalid_argument("gguf_stream_writer", "already open");
  if (alignment_ & (alignment_ - 1))
    return invalid_argument("gguf_stream_writer", "alignment ", alignment_, " is not a power of two");
  meta_.set_u32("general.alignment", alignment_);
  const std::vector<uint8_t> kv = meta_.bytes();
  MLXN_CHECK(kv.size() >= 24);
  uint64_t n_kv = 0;
  std::memcpy(&n_kv, kv.data() + 16, 8);
  path_ = path;
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_)
    return Status(StatusCode::IoError, "[gguf_stream_writer] cannot create " + path + ": " + std::strerror(errno));
  const uint32_t version = 3;
  const uint64_t n_tensors = infos_.size();
  MLXN_TRY(put(&kGgufMagic, 4));
  MLXN_TRY(put(&version, 4));
  MLXN_TRY(put(&n_tensors, 8));
  MLXN_TRY(put(&n_kv, 8));
  MLXN_TRY(put(kv.data() + 24, kv.size() - 24));
  uint64_t offset = 0;
  for (const auto& t : infos_) {
    const uint64_t len = t.name.size();
    const uint32_t dims = static_cast<uint32_t>(t.shape.rank());
    MLXN_TRY(put(&len, 8));
    MLXN_TRY(put(t.name.data(), t.name.size()));
    MLXN_TRY(put(&dims, 4));
    for (int d = t.shape.rank() - 1; d >= 0; --d) {
      const uint64_t ne = static_cast<uint64_t>(t.shape[d]);
      MLXN_TRY(put(&ne, 8));
    }
    MLXN_TRY(put(&t.type, 4));
    MLXN_TRY(put(&offset, 8));
    offset = (offset + t.bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  MLXN_TRY(pad());
  return advance();
}

Status GgufStreamWriter::write(std::span<const uint8_t> bytes) {
  if (!f_) return invalid_argument("gguf_stream_writer", "write() before open()");
  while (!bytes.empty()) {
    if (current_ >= infos_.size())
      return invalid_argument("gguf_stream_writer", bytes.size(), " bytes past the last tensor");
    const size_t take = static_cast<size_t>(std::min<uint64_t>(bytes.size(), infos_[current_].bytes - written_));
    MLXN_TRY(put(bytes.data(), take));
    written_ += take;
    bytes = bytes.subspan(take);
    MLXN_TRY(advance());
  }
  return Status::ok();
}

Result<uint64_t> GgufStreamWriter::close() {
  if (!f_) return invalid_argument("gguf_stream_writer", "close() before open()");
  if (current_ < infos_.size())
    return invalid_argument("gguf_stream_writer", "tensor '", infos_[current_].name, "' got ", written_, " of ",
                            infos_[current_].bytes, " bytes");
  const bool flushed = std::fflush(f_) == 0;
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!flushed || !closed)
    return Status(StatusCode::IoError, "[gguf_stream_writer] cannot finish " + path_ + ": " + std::strerror(errno));
  return pos_;
}

// ---- synthetic models ----------------------------------------------------------------------------------------------

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Random bytes, then the fields that must stay finite: f16 block scales (made small) and f16 elements (|x| < 2).
void fill_random(DType t, uint8_t* p, size_t n, uint64_t seed) {
  uint64_t s = seed;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t r = splitmix64(s);
    std::memcpy(p + i, &r, 8);
  }
  if (i < n) {
    const uint64_t r = splitmix64(s);
    std::memcpy(p + i, &r, n - i);
  }
  if (t == DType::F16) {
    for (size_t k = 1; k < n; k += 2) p[k] &= 0xBF;  // clear the top exponent bit
  } else if (t == DType::F32) {
    for (size_t k = 0; k + 4 <= n; k += 4) {
      const float v = 0.5f + static_cast<float>(p[k]) / 256.0f;
      std::memcpy(p + k, &v, 4);
    }
  } else if (is_quantized(t)) {
    const size_t bb = static_cast<size_t>(dtype_info(t).block_bytes);
    for (size_t k = 0; k + bb <= n; k += bb) {
      uint16_t h;
      std::memcpy(&h, p + k, 2);
      h = static_cast<uint16_t>((h & 0x83FF) | 0x1C00);  // exponent 7: |d| in [2^-8, 2^-7)
      std::memcpy(p + k, &h, 2);
    }
  }
}

}  // namespace

Result<SyntheticModel> write_synthetic_gguf(const std::string& path, uint64_t bytes, uint64_t seed,
                                            const std::function<void(uint64_t, uint64_t)>& progress) {
  if (bytes == 0) return invalid_argument("synthetic_gguf", "size 0");
  struct Part {
    const char* name;
    DType type;
    int64_t rows, cols;
  };
  // Roughly a Llama-3-8B layer's shapes, one type per matrix so that every load path is exercised.
  static constexpr Part kLayer[] = {
      {"attn_norm.weight", DType::F32, 1, 4096},
      {"ffn_up.weight", DType::Q4_0, 14336, 4096},
      {"ffn_down.weight", DType::Q8_0, 4096, 14336},
      {"attn_q.weight", DType::F16, 4096, 4096},
  };
  GgufStreamWriter w(32);
  w.metadata().set_string("general.architecture", "mlxn-synthetic");
  w.metadata().set_string("general.name", "mlxn bench-load synthetic model");
  w.metadata().set_u64("mlxn.synthetic.seed", seed);
  struct Planned {
    std::string name;
    DType type;
    Shape shape;
    uint64_t bytes;
  };
  // Whole layers, every matrix scaled by the same factor so that even a small model holds every type.
  uint64_t layer_bytes = 0;
  for (const auto& p : kLayer)
    layer_bytes += dtype_storage_bytes(p.type, p.cols).value() * static_cast<uint64_t>(p.rows);
  const uint64_t n_layers = std::max<uint64_t>(1, (bytes + layer_bytes - 1) / layer_bytes);
  const double scale = static_cast<double>(bytes) / static_cast<double>(n_layers * layer_bytes);
  std::vector<Planned> parts;
  for (uint64_t layer = 0; layer < n_layers; ++layer) {
    for (const auto& p : kLayer) {
      const uint64_t row = dtype_storage_bytes(p.type, p.cols).value();
      const int64_t rows =
          p.rows == 1 ? 1 : std::clamp<int64_t>(std::llround(static_cast<double>(p.rows) * scale), 1, p.rows);
      const Shape shape = p.rows == 1 ? Shape{p.cols} : Shape{rows, p.cols};
      parts.push_back(
          {"blk." + std::to_string(layer) + "." + p.name, p.type, shape, row * static_cast<uint64_t>(rows)});
    }
  }
  for (const auto& p : parts) MLXN_TRY(w.add_tensor_info(p.name, ggml_id(p.type), p.shape));
  MLXN_TRY(w.open(path));
  SyntheticModel m;
  for (const auto& p : parts) m.bytes += p.bytes;
  std::vector<uint8_t> buf;
  constexpr uint64_t kPiece = uint64_t{32} << 20;
  uint64_t done = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    const uint64_t row = p.bytes / static_cast<uint64_t>(p.shape.rank() == 1 ? 1 : p.shape[0]);
    const uint64_t piece = std::max<uint64_t>(row, kPiece / row * row);  // whole rows, so whole blocks
    for (uint64_t at = 0, k = 0; at < p.bytes; at += piece, ++k) {
      const uint64_t n = std::min(piece, p.bytes - at);
      buf.resize(n);
      fill_random(p.type, buf.data(), n, seed * 0x100000001b3ull + i * 65536 + k);
      MLXN_TRY(w.write(buf));
      done += n;
      if (progress) progress(done, m.bytes);
    }
  }
  MLXN_ASSIGN_OR_RETURN(m.file_bytes, w.close());
  m.tensors = parts.size();
  return m;
}

}  // namespace mlxn::io
