// BertConfig from config.json / GGUF metadata, and sentence-transformers' pooling and normalisation files.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mlxn/models/bert.h"

#include "config_keys.h"

namespace mlxn::models {
namespace {

constexpr std::string_view kOp = "bert_config";

template <typename T>
Result<T> jopt(const io::JsonConfig& c, std::string_view key, T dflt) {
  return detail::json_opt<T>(kOp, c, key, dflt);
}
template <typename T>
Result<T> jreq(const io::JsonConfig& c, std::string_view key) {
  return detail::json_req<T>(kOp, c, key);
}
template <typename T>
Result<T> greq(const io::GgufFile& f, const std::string& key) {
  return detail::gguf_req<T>(kOp, f, key);
}
template <typename T>
Result<T> gopt(const io::GgufFile& f, const std::string& key, T dflt) {
  return detail::gguf_opt<T>(kOp, f, key, dflt);
}

Result<ops::Activation> activation_from_hf(const std::string& a) {
  if (a == "gelu") return ops::Activation::Gelu;
  if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast") return ops::Activation::GeluTanh;
  return unsupported(kOp, "hidden_act '", a, "' (expected gelu, gelu_new or gelu_pytorch_tanh)");
}

}  // namespace

const char* pooling_name(Pooling p) { return p == Pooling::Mean ? "mean" : "cls"; }

Status BertConfig::validate() const {
  if (n_layer <= 0 || n_embd <= 0 || n_head <= 0 || n_ff <= 0 || n_vocab <= 0 || n_pos <= 0 || n_type <= 0)
    return invalid_argument(kOp, "sizes must be positive: ", summary(), ", positions ", n_pos, ", types ", n_type);
  if (head_dim <= 0 || head_dim * n_head != n_embd)
    return invalid_argument(kOp, "head_dim ", head_dim, " x ", n_head, " heads != hidden size ", n_embd);
  if (!(ln_eps > 0.0f)) return invalid_argument(kOp, "layer_norm_eps ", ln_eps, " must be positive");
  if (max_seq_len <= 0) return invalid_argument(kOp, "max_seq_len ", max_seq_len, " must be positive");
  return Status::ok();
}

std::string BertConfig::summary() const {
  std::ostringstream s;
  s << "bert: " << n_layer << " layers, d " << n_embd << ", " << n_head << " heads x " << head_dim << ", ff " << n_ff
    << ", vocab " << n_vocab << ", " << pooling_name(pooling) << " pooling" << (normalize ? ", l2" : "");
  return s.str();
}

Result<BertConfig> bert_config_from_hf(const io::JsonConfig& c) {
  BertConfig b;
  b.format = WeightFormat::HuggingFace;
  MLXN_ASSIGN_OR_RETURN(std::string type, jopt<std::string>(c, "model_type", std::string("bert")));
  if (type != "bert") return unsupported(kOp, c.name(), ": model_type '", type, "' (expected bert)");
  MLXN_ASSIGN_OR_RETURN(std::string pet, jopt<std::string>(c, "position_embedding_type", std::string("absolute")));
  if (pet != "absolute") return unsupported(kOp, "position_embedding_type '", pet, "' (only absolute)");
  MLXN_ASSIGN_OR_RETURN(b.n_layer, jreq<int64_t>(c, "num_hidden_layers"));
  MLXN_ASSIGN_OR_RETURN(b.n_embd, jreq<int64_t>(c, "hidden_size"));
  MLXN_ASSIGN_OR_RETURN(b.n_head, jreq<int64_t>(c, "num_attention_heads"));
  MLXN_ASSIGN_OR_RETURN(b.n_ff, jreq<int64_t>(c, "intermediate_size"));
  MLXN_ASSIGN_OR_RETURN(b.n_vocab, jreq<int64_t>(c, "vocab_size"));
  MLXN_ASSIGN_OR_RETURN(b.n_pos, jopt<int64_t>(c, "max_position_embeddings", b.n_pos));
  MLXN_ASSIGN_OR_RETURN(b.n_type, jopt<int64_t>(c, "type_vocab_size", b.n_type));
  MLXN_ASSIGN_OR_RETURN(double eps, jopt<double>(c, "layer_norm_eps", 1e-12));
  b.ln_eps = static_cast<float>(eps);
  MLXN_ASSIGN_OR_RETURN(std::string act, jopt<std::string>(c, "hidden_act", std::string("gelu")));
  MLXN_ASSIGN_OR_RETURN(b.act, activation_from_hf(act));
  b.head_dim = b.n_head > 0 ? b.n_embd / b.n_head : 0;
  b.max_seq_len = b.n_pos;
  MLXN_TRY(b.validate());
  return b;
}

Result<BertConfig> bert_config_from_gguf(const io::GgufFile& f) {
  BertConfig b;
  b.format = WeightFormat::Gguf;
  const std::string arch = f.architecture();
  if (arch != "bert") return unsupported(kOp, f.path(), ": architecture '", arch, "' (expected bert)");
  const std::string p = "bert.";
  MLXN_ASSIGN_OR_RETURN(b.n_layer, greq<int64_t>(f, p + "block_count"));
  MLXN_ASSIGN_OR_RETURN(b.n_embd, greq<int64_t>(f, p + "embedding_length"));
  MLXN_ASSIGN_OR_RETURN(b.n_head, greq<int64_t>(f, p + "attention.head_count"));
  MLXN_ASSIGN_OR_RETURN(b.n_ff, greq<int64_t>(f, p + "feed_forward_length"));
  MLXN_ASSIGN_OR_RETURN(b.n_pos, gopt<int64_t>(f, p + "context_length", b.n_pos));
  MLXN_ASSIGN_OR_RETURN(b.ln_eps, gopt<float>(f, p + "attention.layer_norm_epsilon", b.ln_eps));
  MLXN_ASSIGN_OR_RETURN(b.n_type, gopt<int64_t>(f, "tokenizer.ggml.token_type_count", b.n_type));
  // llama.cpp's LLAMA_POOLING_TYPE: 0 none, 1 mean, 2 cls, 3 last, 4 rank.
  MLXN_ASSIGN_OR_RETURN(int64_t pooling, gopt<int64_t>(f, p + "pooling_type", int64_t{1}));
  if (pooling != 1 && pooling != 2)
    return unsupported(kOp, "bert.pooling_type ", pooling, " (only 1 = mean and 2 = cls)");
  b.pooling = pooling == 2 ? Pooling::Cls : Pooling::Mean;
  const auto* embd = f.tensor("token_embd.weight");
  if (embd == nullptr) return error(StatusCode::NotFound, kOp, f.path(), " has no token_embd.weight");
  b.n_vocab = embd->shape[0];
  b.head_dim = b.n_head > 0 ? b.n_embd / b.n_head : 0;
  b.max_seq_len = b.n_pos;
  MLXN_TRY(b.validate());
  return b;
}

Status apply_sentence_transformers(const std::string& dir, BertConfig& c) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  std::error_code ec;
  if (fs::exists(root / "sentence_bert_config.json", ec)) {
    MLXN_ASSIGN_OR_RETURN(auto sb, io::JsonConfig::open((root / "sentence_bert_config.json").string()));
    MLXN_ASSIGN_OR_RETURN(int64_t len, jopt<int64_t>(sb, "max_seq_length", c.max_seq_len));
    if (len > 0) c.max_seq_len = std::min(len, c.n_pos);
  }
  if (!fs::exists(root / "modules.json", ec)) return Status::ok();
  // modules.json is an array (which JsonConfig's dotted paths do not index): read it with nlohmann::json.
  std::ifstream in(root / "modules.json");
  const auto mods = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!mods.is_array()) return error(StatusCode::FormatError, kOp, dir, "/modules.json is not a JSON array");
  c.normalize = false;
  std::string pooling_dir;
  for (const auto& m : mods) {
    if (!m.is_object() || !m.contains("type") || !m["type"].is_string()) continue;
    const std::string type = m["type"].get<std::string>();
    if (type.ends_with(".Normalize")) c.normalize = true;
    if (type.ends_with(".Pooling") && m.contains("path") && m["path"].is_string())
      pooling_dir = m["path"].get<std::string>();
  }
  if (pooling_dir.empty()) return Status::ok();
  const fs::path pc = root / pooling_dir / "config.json";
  if (!fs::exists(pc, ec)) return Status::ok();
  MLXN_ASSIGN_OR_RETURN(auto p, io::JsonConfig::open(pc.string()));
  MLXN_ASSIGN_OR_RETURN(bool mean, jopt<bool>(p, "pooling_mode_mean_tokens", false));
  MLXN_ASSIGN_OR_RETURN(bool cls, jopt<bool>(p, "pooling_mode_cls_token", false));
  MLXN_ASSIGN_OR_RETURN(bool mx, jopt<bool>(p, "pooling_mode_max_tokens", false));
  MLXN_ASSIGN_OR_RETURN(bool sq, jopt<bool>(p, "pooling_mode_mean_sqrt_len_tokens", false));
  MLXN_ASSIGN_OR_RETURN(std::string mode, jopt<std::string>(p, "pooling_mode", std::string()));
  if (mode == "cls") cls = true, mean = false;
  if (mode == "mean") mean = true, cls = false;
  if (mx || sq || (mean && cls) || (!mean && !cls))
    return unsupported(kOp, pc.string(), ": only one of mean or CLS pooling is supported");
  c.pooling = cls ? Pooling::Cls : Pooling::Mean;
  return Status::ok();
}

}  // namespace mlxn::models
