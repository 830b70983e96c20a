#include "mlxn/models/config.h"

#include <cmath>
#include <sstream>

#include "config_keys.h"

namespace mlxn::models {
namespace {

constexpr std::string_view kOp = "model_config";

// Typed key reads (models/src/config_keys.h) with this reader's name in the errors.
template <typename T>
Result<T> req(const io::GgufFile& f, const std::string& key) {
  return detail::gguf_req<T>(kOp, f, key);
}
template <typename T>
Result<T> opt(const io::GgufFile& f, const std::string& key, T dflt) {
  return detail::gguf_opt<T>(kOp, f, key, dflt);
}
template <typename T>
Result<T> jopt(const io::JsonConfig& c, std::string_view key, T dflt) {
  return detail::json_opt<T>(kOp, c, key, dflt);
}
template <typename T>
Result<T> jreq(const io::JsonConfig& c, std::string_view key) {
  return detail::json_req<T>(kOp, c, key);
}

// Gemma 3: layer i (0-based) is global when (i + 1) % pattern == 0 (HF sliding_window_pattern, llama.cpp's
// set_swa_pattern(6)).
std::vector<bool> sliding_pattern(int64_t n_layer, int64_t pattern) {
  std::vector<bool> out(static_cast<size_t>(n_layer), false);
  if (pattern <= 0) return out;
  for (int64_t i = 0; i < n_layer; ++i) out[static_cast<size_t>(i)] = (i + 1) % pattern != 0;
  return out;
}

// Defaults shared by both sources once the architecture is known.
void arch_defaults(ModelConfig& c) {
  switch (c.arch) {
    case Arch::Llama:
      c.rope_base = 10000.0f;
      break;
    case Arch::Qwen2:
      c.qkv_bias = true;
      c.rope_base = 1000000.0f;
      break;
    case Arch::Qwen3:
      c.qk_norm = true;
      c.rope_base = 1000000.0f;
      break;
    case Arch::Gemma3:
      c.qk_norm = true;
      c.post_norms = true;
      c.ffn_act = ops::Activation::GeluTanh;
      c.rms_eps = 1e-6f;
      c.rope_base = 1000000.0f;
      c.rope_base_local = 10000.0f;
      c.tied_embeddings = true;
      break;
  }
}

}  // namespace

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::Llama:
      return "llama";
    case Arch::Qwen2:
      return "qwen2";
    case Arch::Qwen3:
      return "qwen3";
    case Arch::Gemma3:
      return "gemma3";
  }
  return "?";
}

std::optional<Arch> arch_from_name(std::string_view n) {
  if (n == "llama") return Arch::Llama;
  if (n == "qwen2") return Arch::Qwen2;
  if (n == "qwen3") return Arch::Qwen3;
  if (n == "gemma3" || n == "gemma3_text") return Arch::Gemma3;
  return std::nullopt;
}

Status ModelConfig::validate() const {
  auto bad = [](auto&&... a) { return invalid_argument(kOp, a...); };
  if (n_layer <= 0) return bad("n_layer = ", n_layer, " must be positive");
  if (n_embd <= 0 || n_head <= 0 || n_head_kv <= 0 || head_dim <= 0 || n_ff <= 0 || n_vocab <= 0)
    return bad("sizes must be positive (n_embd ", n_embd, ", n_head ", n_head, ", n_head_kv ", n_head_kv, ", head_dim ",
               head_dim, ", n_ff ", n_ff, ", n_vocab ", n_vocab, ")");
  if (n_head % n_head_kv != 0) return bad("n_head ", n_head, " is not a multiple of n_head_kv ", n_head_kv);
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2 != 0)
    return bad("rope_dim ", rope_dim, " must be even and in (0, head_dim = ", head_dim, "]");
  if (!(rms_eps >= 0.0f) || !std::isfinite(rms_eps)) return bad("rms_eps ", rms_eps, " must be finite and >= 0");
  if (!(rope_base > 0.0f) || !(rope_base_local > 0.0f)) return bad("RoPE bases must be positive");
  if (rope_scaling != RopeScaling::None && !(rope_factor > 0.0f)) return bad("rope scaling factor must be positive");
  if ((rope_scaling == RopeScaling::Llama3 || rope_scaling == RopeScaling::Yarn) && rope_orig_ctx <= 0)
    return bad("rope scaling needs the original context length");
  if (!layer_sliding.empty() && static_cast<int64_t>(layer_sliding.size()) != n_layer)
    return bad("layer_sliding has ", layer_sliding.size(), " entries for ", n_layer, " layers");
  for (bool s : layer_sliding)
    if (s && sliding_window <= 0) return bad("sliding layers need sliding_window > 0");
  if (attn_softcap < 0.0f || final_softcap < 0.0f) return bad("softcaps must be >= 0");
  return Status::ok();
}

std::string ModelConfig::summary() const {
  std::ostringstream os;
  os << arch_name(arch) << ": " << n_layer << " layers, d " << n_embd << ", " << n_head << "/" << n_head_kv
     << " heads x " << head_dim << ", ff " << n_ff << ", vocab " << n_vocab;
  int64_t n_sliding = 0;
  for (bool s : layer_sliding) n_sliding += s;
  if (n_sliding) os << ", " << n_sliding << " sliding layers (window " << sliding_window << ")";
  if (tied_embeddings) os << ", tied embeddings";
  return os.str();
}

Result<ModelConfig> config_from_gguf(const io::GgufFile& f) {
  const std::string an = f.architecture();
  const auto arch = arch_from_name(an);
  if (!arch) return unsupported(kOp, "GGUF architecture '", an, "' (supported: llama, qwen2, qwen3, gemma3)");
  ModelConfig c;
  c.arch = *arch;
  c.format = WeightFormat::Gguf;
  arch_defaults(c);
  const std::string p = an + ".";
  MLXN_ASSIGN_OR_RETURN(c.n_layer, req<int64_t>(f, p + "block_count"));
  MLXN_ASSIGN_OR_RETURN(c.n_embd, req<int64_t>(f, p + "embedding_length"));
  MLXN_ASSIGN_OR_RETURN(c.n_ff, req<int64_t>(f, p + "feed_forward_length"));
  MLXN_ASSIGN_OR_RETURN(c.n_head, req<int64_t>(f, p + "attention.head_count"));
  MLXN_ASSIGN_OR_RETURN(c.n_head_kv, opt<int64_t>(f, p + "attention.head_count_kv", c.n_head));
  if (c.n_head <= 0) return invalid_argument(kOp, p, "attention.head_count must be positive");
  MLXN_ASSIGN_OR_RETURN(c.head_dim, opt<int64_t>(f, p + "attention.key_length", c.n_embd / c.n_head));
  MLXN_ASSIGN_OR_RETURN(int64_t v_len, opt<int64_t>(f, p + "attention.value_length", c.head_dim));
  if (v_len != c.head_dim) return unsupported(kOp, "value_length ", v_len, " differs from key_length ", c.head_dim);
  MLXN_ASSIGN_OR_RETURN(c.n_ctx_train, opt<int64_t>(f, p + "context_length", int64_t{0}));
  MLXN_ASSIGN_OR_RETURN(c.rms_eps, opt<float>(f, p + "attention.layer_norm_rms_epsilon", c.rms_eps));
  MLXN_ASSIGN_OR_RETURN(c.rope_dim, opt<int64_t>(f, p + "rope.dimension_count", c.head_dim));
  MLXN_ASSIGN_OR_RETURN(c.rope_base, opt<float>(f, p + "rope.freq_base", c.rope_base));
  MLXN_ASSIGN_OR_RETURN(std::string scaling, opt<std::string>(f, p + "rope.scaling.type", std::string("none")));
  MLXN_ASSIGN_OR_RETURN(c.rope_factor, opt<float>(f, p + "rope.scaling.factor", 1.0f));
  MLXN_ASSIGN_OR_RETURN(c.rope_orig_ctx, opt<int64_t>(f, p + "rope.scaling.original_context_length", int64_t{0}));
  if (scaling == "linear" && c.rope_factor != 1.0f) {
    c.rope_scaling = RopeScaling::Linear;
  } else if (scaling == "yarn") {
    c.rope_scaling = RopeScaling::Yarn;
  } else if (scaling != "none" && scaling != "linear") {
    return unsupported(kOp, "rope.scaling.type '", scaling, "'");
  }
  // Llama 3.1's scaling travels as the rope_freqs.weight tensor (frequency factors), which the loader picks up.
  MLXN_ASSIGN_OR_RETURN(c.attn_softcap, opt<float>(f, p + "attn_logit_softcapping", 0.0f));
  MLXN_ASSIGN_OR_RETURN(c.final_softcap, opt<float>(f, p + "final_logit_softcapping", 0.0f));

  // Vocabulary: <arch>.vocab_size, else the token list, else token_embd's rows.
  int64_t vocab = 0;
  if (f.find(p + "vocab_size") != nullptr) {
    MLXN_ASSIGN_OR_RETURN(vocab, req<int64_t>(f, p + "vocab_size"));
  } else if (const auto* t = f.tensor("token_embd.weight"); t != nullptr && t->shape.rank() == 2) {
    vocab = t->shape[0];
  } else if (const auto* tok = f.find("tokenizer.ggml.tokens"); tok != nullptr && tok->is_array()) {
    vocab = static_cast<int64_t>(tok->size());
  }
  c.n_vocab = vocab;
  c.tied_embeddings = f.tensor("output.weight") == nullptr;

  if (c.arch == Arch::Llama) c.rope_layout = ops::RopeLayout::Normal;  // the converter permuted q / k
  if (c.arch == Arch::Gemma3) {
    MLXN_ASSIGN_OR_RETURN(c.sliding_window, opt<int32_t>(f, p + "attention.sliding_window", int32_t{0}));
    c.layer_sliding = sliding_pattern(c.n_layer, c.sliding_window > 0 ? 6 : 0);
    c.embed_scale = std::sqrt(static_cast<float>(c.n_embd));
    // GGUF has no query_pre_attn_scalar; llama.cpp uses n_embd / n_head for the 27B (62 layers), head_dim else.
    c.attn_scale = c.n_layer == 62 ? 1.0f / std::sqrt(static_cast<float>(c.n_embd / c.n_head)) : 0.0f;
    c.norm_weight_offset = 0.0f;  // the converter stored 1 + w
  }
  MLXN_TRY(c.validate());
  return c;
}

Result<ModelConfig> config_from_hf(const io::JsonConfig& root) {
  MLXN_ASSIGN_OR_RETURN(std::string mt, jreq<std::string>(root, "model_type"));
  // Gemma 3 multimodal checkpoints nest the text model's settings under text_config.
  std::string pre;
  if (mt == "gemma3" && root.has("text_config")) pre = "text_config.";
  auto key = [&](const char* k) { return pre + k; };
  const auto arch = arch_from_name(mt);
  if (!arch) return unsupported(kOp, "model_type '", mt, "' (supported: llama, qwen2, qwen3, gemma3_text, gemma3)");
  ModelConfig c;
  c.arch = *arch;
  c.format = WeightFormat::HuggingFace;
  arch_defaults(c);
  MLXN_ASSIGN_OR_RETURN(c.n_layer, jreq<int64_t>(root, key("num_hidden_layers")));
  MLXN_ASSIGN_OR_RETURN(c.n_embd, jreq<int64_t>(root, key("hidden_size")));
  MLXN_ASSIGN_OR_RETURN(c.n_ff, jreq<int64_t>(root, key("intermediate_size")));
  MLXN_ASSIGN_OR_RETURN(c.n_head, jreq<int64_t>(root, key("num_attention_heads")));
  if (c.n_head <= 0) return invalid_argument(kOp, "num_attention_heads must be positive");
  MLXN_ASSIGN_OR_RETURN(c.n_head_kv, jopt<int64_t>(root, key("num_key_value_heads"), c.n_head));
  MLXN_ASSIGN_OR_RETURN(c.head_dim, jopt<int64_t>(root, key("head_dim"), c.n_embd / c.n_head));
  MLXN_ASSIGN_OR_RETURN(c.n_vocab, jreq<int64_t>(root, key("vocab_size")));
  MLXN_ASSIGN_OR_RETURN(c.n_ctx_train, jopt<int64_t>(root, key("max_position_embeddings"), int64_t{0}));
  MLXN_ASSIGN_OR_RETURN(double eps, jopt<double>(root, key("rms_norm_eps"), static_cast<double>(c.rms_eps)));
  c.rms_eps = static_cast<float>(eps);
  MLXN_ASSIGN_OR_RETURN(double theta, jopt<double>(root, key("rope_theta"), static_cast<double>(c.rope_base)));
  c.rope_base = static_cast<float>(theta);
  // transformers >= 5 saves rope_parameters ({rope_theta, rope_type, factor, ...}; Gemma 3 one such object per layer
  // type) in place of rope_theta / rope_scaling / rope_local_base_freq.
  std::string rope_params = key("rope_parameters"), rope_params_local;
  if (root.has(rope_params + ".full_attention")) {
    rope_params_local = rope_params + ".sliding_attention";
    rope_params += ".full_attention";
  }
  if (root.has(rope_params + ".rope_theta")) {
    MLXN_ASSIGN_OR_RETURN(theta, jopt<double>(root, rope_params + ".rope_theta", theta));
    c.rope_base = static_cast<float>(theta);
  }
  c.rope_dim = c.head_dim;
  if (root.has(key("partial_rotary_factor"))) {
    MLXN_ASSIGN_OR_RETURN(double prf, jopt<double>(root, key("partial_rotary_factor"), 1.0));
    c.rope_dim = static_cast<int64_t>(std::llround(prf * static_cast<double>(c.head_dim)));
  }
  MLXN_ASSIGN_OR_RETURN(c.tied_embeddings, jopt<bool>(root, key("tie_word_embeddings"), c.tied_embeddings));
  if (c.arch == Arch::Qwen2) {
    // Qwen2 always has q / k / v biases; attention_bias is only set by some exports.
    MLXN_ASSIGN_OR_RETURN(c.qkv_bias, jopt<bool>(root, key("attention_bias"), true));
  } else if (c.arch != Arch::Gemma3) {
    MLXN_ASSIGN_OR_RETURN(c.qkv_bias, jopt<bool>(root, key("attention_bias"), false));
  }

  // rope_scaling: {"rope_type" | "type": linear | llama3 | yarn | default, "factor", ...}
  const std::string rs = root.has(key("rope_scaling")) ? key("rope_scaling") : rope_params;
  if (root.has(rs + ".factor") || root.has(rs + ".rope_type") || root.has(rs + ".type")) {
    std::string type;
    MLXN_ASSIGN_OR_RETURN(type, jopt<std::string>(root, rs + ".rope_type", std::string()));
    if (type.empty()) {
      MLXN_ASSIGN_OR_RETURN(type, jopt<std::string>(root, rs + ".type", std::string("default")));
    }
    MLXN_ASSIGN_OR_RETURN(double factor, jopt<double>(root, rs + ".factor", 1.0));
    c.rope_factor = static_cast<float>(factor);
    MLXN_ASSIGN_OR_RETURN(c.rope_orig_ctx,
                          jopt<int64_t>(root, rs + ".original_max_position_embeddings", c.n_ctx_train));
    if (type == "linear") {
      c.rope_scaling = RopeScaling::Linear;
    } else if (type == "llama3") {
      c.rope_scaling = RopeScaling::Llama3;
      MLXN_ASSIGN_OR_RETURN(double lo, jopt<double>(root, rs + ".low_freq_factor", 1.0));
      MLXN_ASSIGN_OR_RETURN(double hi, jopt<double>(root, rs + ".high_freq_factor", 4.0));
      c.rope_low_freq_factor = static_cast<float>(lo);
      c.rope_high_freq_factor = static_cast<float>(hi);
    } else if (type == "yarn") {
      c.rope_scaling = RopeScaling::Yarn;
    } else if (type != "default") {
      return unsupported(kOp, "rope_scaling type '", type, "'");
    }
  }

  if (c.arch == Arch::Gemma3) {
    c.norm_weight_offset = 1.0f;  // checkpoints store w; Gemma multiplies by (1 + w)
    c.embed_scale = std::sqrt(static_cast<float>(c.n_embd));
    MLXN_ASSIGN_OR_RETURN(double qpas,
                          jopt<double>(root, key("query_pre_attn_scalar"), static_cast<double>(c.head_dim)));
    c.attn_scale = static_cast<float>(1.0 / std::sqrt(qpas));
    MLXN_ASSIGN_OR_RETURN(double local, jopt<double>(root, key("rope_local_base_freq"), 10000.0));
    if (!rope_params_local.empty()) {
      MLXN_ASSIGN_OR_RETURN(local, jopt<double>(root, rope_params_local + ".rope_theta", local));
    }
    c.rope_base_local = static_cast<float>(local);
    MLXN_ASSIGN_OR_RETURN(int64_t window, jopt<int64_t>(root, key("sliding_window"), int64_t{0}));
    c.sliding_window = static_cast<int32_t>(window);
    if (root.has(key("layer_types"))) {
      MLXN_ASSIGN_OR_RETURN(auto types, jopt<std::vector<std::string>>(root, key("layer_types"), {}));
      c.layer_sliding.clear();
      for (const auto& t : types) c.layer_sliding.push_back(t == "sliding_attention");
    } else {
      MLXN_ASSIGN_OR_RETURN(int64_t pattern, jopt<int64_t>(root, key("sliding_window_pattern"), int64_t{6}));
      c.layer_sliding = sliding_pattern(c.n_layer, window > 0 ? pattern : 0);
    }
    MLXN_ASSIGN_OR_RETURN(double asc, jopt<double>(root, key("attn_logit_softcapping"), 0.0));
    MLXN_ASSIGN_OR_RETURN(double fsc, jopt<double>(root, key("final_logit_softcapping"), 0.0));
    c.attn_softcap = static_cast<float>(asc);
    c.final_softcap = static_cast<float>(fsc);
    MLXN_ASSIGN_OR_RETURN(std::string act,
                          jopt<std::string>(root, key("hidden_activation"), std::string("gelu_pytorch_tanh")));
    c.ffn_act = act == "gelu" ? ops::Activation::Gelu : ops::Activation::GeluTanh;
  }
  MLXN_TRY(c.validate());
  return c;
}

}  // namespace mlxn::models
