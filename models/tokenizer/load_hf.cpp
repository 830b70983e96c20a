// A tokenizer from Hugging Face files: tokenizer.json (model.type "BPE" with a byte-level pre-tokenizer, as Llama 3,
// Qwen2/3 and GPT-2 ship) plus the special tokens and chat template of tokenizer_config.json and the end ids of
// generation_config.json. Pipelines we do not reproduce exactly are refused with Unsupported rather than
// approximated.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/impl.h"

namespace mlxn::tok {

using detail::kOp;
using nlohmann::json;

namespace detail {
bool pre_tokenizer_from_regex(std::string_view pattern, PreTokenizer& out) {
  static constexpr std::string_view kLlama3 =
      R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
  static constexpr std::string_view kQwen2 =
      R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
  static constexpr std::string_view kGpt2 =
      R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";
  if (pattern == kLlama3)
    out = PreTokenizer::Llama3;
  else if (pattern == kQwen2)
    out = PreTokenizer::Qwen2;
  else if (pattern == kGpt2)
    out = PreTokenizer::Gpt2;
  else
    return false;
  return true;
}
}  // namespace detail

namespace {

constexpr int64_t kMaxVocab = int64_t{1} << 24;

// Missing, null or "" (Qwen writes empty strings where others write null).
bool unset(const json& j, const char* key) {
  return !j.contains(key) || j[key].is_null() || (j[key].is_string() && j[key].get<std::string>().empty());
}

// What the pre-tokenizer pipeline amounts to: one of our regexes, then the byte-level mapping.
Status parse_pre_tokenizer(const json& pt, TokenizerSpec& spec) {
  if (pt.is_null()) return unsupported(kOp, "tokenizer.json has no pre_tokenizer: not a byte-level BPE");
  const std::string type = pt.value("type", "");
  if (type == "ByteLevel") {
    if (!pt.value("use_regex", true))
      return unsupported(kOp, "a ByteLevel pre-tokenizer without its regex and without a Split before it");
    spec.pre = PreTokenizer::Gpt2;
    spec.add_space_prefix = pt.value("add_prefix_space", false);
    return Status::ok();
  }
  if (type != "Sequence") return unsupported(kOp, "pre_tokenizer type '", type, "' is not supported");
  const json& list = pt.at("pretokenizers");
  bool have_split = false, have_byte_level = false;
  for (const json& p : list) {
    const std::string t = p.value("type", "");
    if (t == "Split" && !have_split && !have_byte_level) {
      if (!p.at("pattern").contains("Regex")) return unsupported(kOp, "a Split pre-tokenizer with a string pattern");
      const std::string pattern = p.at("pattern").at("Regex").get<std::string>();
      if (!detail::pre_tokenizer_from_regex(pattern, spec.pre))
        return unsupported(kOp, "the Split pre-tokenizer regex '", pattern,
                           "' is none of the Llama 3, Qwen2 and GPT-2 patterns");
      if (p.value("behavior", "") != "Isolated" || p.value("invert", false))
        return unsupported(kOp, "a Split pre-tokenizer with behavior '", p.value("behavior", ""),
                           "' / invert (only Isolated, not inverted, is supported)");
      have_split = true;
    } else if (t == "ByteLevel" && !have_byte_level) {
      if (p.value("use_regex", true)) {
        if (have_split) return unsupported(kOp, "a ByteLevel pre-tokenizer with its own regex after a Split");
        spec.pre = PreTokenizer::Gpt2;
      }
      spec.add_space_prefix = p.value("add_prefix_space", false);
      have_byte_level = true;
    } else {
      return unsupported(kOp, "pre_tokenizer step '", t, "' in this position is not supported");
    }
  }
  if (!have_byte_level) return unsupported(kOp, "the pre_tokenizer has no ByteLevel step: not a byte-level BPE");
  return Status::ok();
}

Status parse_normalizer(const json& n, TokenizerSpec& spec) {
  if (n.is_null()) return Status::ok();
  const std::string type = n.value("type", "");
  if (type == "NFC") {
    spec.nfc = true;
    return Status::ok();
  }
  if (type == "Sequence" && n.value("normalizers", json::array()).empty()) return Status::ok();
  return unsupported(kOp, "normalizer '", type, "' is not supported");
}

// "bos_token": "<s>" or {"content": "<s>", ...} or null.
std::string token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

// The SpecialToken ids a TemplateProcessing puts before and after the single sequence ($A).
void parse_post_processor(const json& pp, const std::unordered_map<std::string, int32_t>& ids, int32_t& before,
                          int32_t& after) {
  if (pp.is_null() || !pp.is_object()) return;
  const std::string type = pp.value("type", "");
  if (type == "Sequence") {
    for (const json& p : pp.value("processors", json::array())) parse_post_processor(p, ids, before, after);
    return;
  }
  if (type != "TemplateProcessing") return;
  bool seen_sequence = false;
  for (const json& piece : pp.value("single", json::array())) {
    if (piece.contains("Sequence")) {
      seen_sequence = true;
    } else if (piece.contains("SpecialToken")) {
      const std::string name = piece["SpecialToken"].value("id", "");
      int32_t id = -1;
      const json& st = pp.value("special_tokens", json::object());
      if (st.contains(name) && st[name].contains("ids") && !st[name]["ids"].empty())
        id = st[name]["ids"][0].get<int32_t>();
      else if (auto it = ids.find(name); it != ids.end())
        id = it->second;
      (seen_sequence ? after : before) = id;
    }
  }
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(StatusCode::NotFound, kOp, "cannot open ", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return error(StatusCode::IoError, kOp, "cannot read ", path);
  return ss.str();
}

Result<std::unique_ptr<Tokenizer>> from_json(const json& j, const json& cfg, const json& gen,
                                             std::string_view model_type) {
  TokenizerSpec spec;
  spec.kind = TokenizerKind::ByteLevelBpe;
  const json& model = j.at("model");
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") return unsupported(kOp, "tokenizer.json model.type '", type, "' is not supported (BPE is)");
  if (model.value("byte_fallback", false))
    return unsupported(kOp, "a BPE model with byte_fallback (a SentencePiece conversion): load the GGUF instead");
  if (!unset(model, "continuing_subword_prefix") || !unset(model, "end_of_word_suffix") || !unset(model, "dropout"))
    return unsupported(kOp, "BPE with a subword prefix, word suffix or dropout");
  MLXN_TRY(parse_normalizer(j.value("normalizer", json()), spec));
  MLXN_TRY(parse_pre_tokenizer(j.value("pre_tokenizer", json()), spec));
  spec.ignore_merges = model.value("ignore_merges", false);

  // Vocabulary: model.vocab plus added_tokens; ids nobody names stay as empty Unused tokens.
  int64_t n = 0;
  const json& vocab = model.at("vocab");
  if (!vocab.is_object()) return error(StatusCode::FormatError, kOp, "model.vocab is not an object");
  auto note_id = [&](int64_t id, const std::string& what) -> Status {
    if (id < 0 || id >= kMaxVocab)
      return error(StatusCode::FormatError, kOp, what, " has id ", id, " (ids must lie in [0, ", kMaxVocab, "))");
    n = std::max(n, id + 1);
    return Status::ok();
  };
  for (auto it = vocab.begin(); it != vocab.end(); ++it) MLXN_TRY(note_id(it.value().get<int64_t>(), it.key()));
  const json added = j.value("added_tokens", json::array());
  for (const json& a : added) MLXN_TRY(note_id(a.at("id").get<int64_t>(), a.at("content").get<std::string>()));
  spec.tokens.assign(static_cast<size_t>(n), std::string());
  spec.types.assign(static_cast<size_t>(n), TokenType::Unused);
  std::unordered_map<std::string, int32_t> ids;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto id = it.value().get<int32_t>();
    spec.tokens[id] = it.key();
    spec.types[id] = TokenType::Normal;
    ids.emplace(it.key(), id);
  }
  for (const json& a : added) {
    const auto id = a.at("id").get<int32_t>();
    spec.tokens[id] = a.at("content").get<std::string>();
    spec.types[id] = a.value("special", false) ? TokenType::Control : TokenType::UserDefined;
    ids[spec.tokens[id]] = id;
    if (a.value("lstrip", false)) spec.lstrip.push_back(id);
    if (a.value("rstrip", false)) spec.rstrip.push_back(id);
  }

  // Merges: "left right" strings (older files) or [left, right] pairs (tokenizers >= 0.20).
  const json& merges = model.at("merges");
  spec.merges.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& m = merges[r];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos)
        return error(StatusCode::FormatError, kOp, "model.merges[", r, "] = '", s,
                     "' is not two tokens separated by one space");
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return error(StatusCode::FormatError, kOp, "model.merges[", r, "] is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }

  auto id_of = [&](const std::string& text) -> int32_t {
    auto it = ids.find(text);
    return it == ids.end() ? -1 : it->second;
  };
  if (model.contains("unk_token") && model["unk_token"].is_string())
    spec.unk = id_of(model["unk_token"].get<std::string>());

  int32_t before = -1, after = -1;
  parse_post_processor(j.value("post_processor", json()), ids, before, after);
  spec.bos = before;
  spec.add_bos = before >= 0;
  spec.eos = after;
  spec.add_eos = after >= 0;

  std::string tmpl;
  if (cfg.is_object()) {
    if (cfg.contains("bos_token") && !token_content(cfg["bos_token"]).empty())
      spec.bos = id_of(token_content(cfg["bos_token"]));
    if (cfg.contains("eos_token") && !token_content(cfg["eos_token"]).empty())
      spec.eos = id_of(token_content(cfg["eos_token"]));
    if (cfg.contains("pad_token") && !token_content(cfg["pad_token"]).empty())
      spec.pad = id_of(token_content(cfg["pad_token"]));
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
      spec.add_bos = cfg["add_bos_token"].get<bool>();
    if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
      spec.add_eos = cfg["add_eos_token"].get<bool>();
    if (cfg.contains("chat_template")) {
      const json& t = cfg["chat_template"];
      if (t.is_string()) {
        tmpl = t.get<std::string>();
      } else if (t.is_array()) {  // [{"name": "default", "template": "..."}, ...]
        for (const json& e : t)
          if (e.value("name", "") == "default") tmpl = e.value("template", "");
      }
    }
  }
  if (gen.is_object() && gen.contains("eos_token_id")) {
    const json& e = gen["eos_token_id"];
    std::vector<int32_t> list;
    if (e.is_number_integer())
      list.push_back(e.get<int32_t>());
    else if (e.is_array())
      for (const json& x : e) list.push_back(x.get<int32_t>());
    for (int32_t id : list)
      if (id >= 0 && id < static_cast<int32_t>(n)) spec.end_of_generation.push_back(id);
    if (spec.eos < 0 && !spec.end_of_generation.empty()) spec.eos = spec.end_of_generation[0];
  }
  if (spec.add_bos && spec.bos < 0) spec.add_bos = false;
  if (spec.add_eos && spec.eos < 0) spec.add_eos = false;

  detail::fill_end_of_turn(spec);
  spec.chat = detect_chat_format(tmpl, model_type, spec.tokens);
  if (spec.chat == ChatFormat::ChatML) spec.chat_default_system = detail::default_system_prompt(tmpl);
  return Tokenizer::create(std::move(spec));
}

Result<json> parse_json(std::string_view text, const char* what) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return error(StatusCode::FormatError, kOp, what, " is not valid JSON");
  return j;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_tokenizer_json(std::string_view tokenizer_json,
                                                                  std::string_view config_json,
                                                                  std::string_view generation_config_json,
                                                                  std::string_view model_type) {
  MLXN_ASSIGN_OR_RETURN(const json j, parse_json(tokenizer_json, "tokenizer.json"));
  json cfg, gen;
  if (!config_json.empty()) {
    MLXN_ASSIGN_OR_RETURN(cfg, parse_json(config_json, "tokenizer_config.json"));
  }
  if (!generation_config_json.empty()) {
    MLXN_ASSIGN_OR_RETURN(gen, parse_json(generation_config_json, "generation_config.json"));
  }
  // Wrong JSON types and missing required members surface as exceptions of nlohmann::json: report them.
  try {
    return from_json(j, cfg, gen, model_type);
  } catch (const json::exception& e) {
    return error(StatusCode::FormatError, kOp, "tokenizer.json: ", e.what());
  }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_hf_dir(const std::string& dir) {
  MLXN_ASSIGN_OR_RETURN(const std::string tok, read_file(dir + "/tokenizer.json"));
  std::string cfg, gen, model_type;
  if (auto r = read_file(dir + "/tokenizer_config.json"); r.is_ok()) cfg = std::move(r).value();
  if (auto r = read_file(dir + "/generation_config.json"); r.is_ok()) gen = std::move(r).value();
  if (auto r = read_file(dir + "/config.json"); r.is_ok()) {
    const json c = json::parse(r.value(), nullptr, /*allow_exceptions=*/false);
    if (c.is_object() && c.contains("model_type") && c["model_type"].is_string())
      model_type = c["model_type"].get<std::string>();
  }
  return from_tokenizer_json(tok, cfg, gen, model_type);
}

}  // namespace mlxn::tok
