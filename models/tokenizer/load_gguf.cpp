// A tokenizer from GGUF metadata, with llama.cpp's meaning of the tokenizer.ggml.* keys and its defaults where a
// key is absent.
#include "mlxn/io/gguf.h"
#include "tokenizer/impl.h"

namespace mlxn::tok {

using detail::kOp;

namespace {

// The value of an optional key: `fallback` when absent, an error when present with the wrong type.
template <typename T>
Result<T> get_or(const io::GgufFile& f, std::string_view key, T fallback) {
  if (f.find(key) == nullptr) return fallback;
  return f.get<T>(key);
}

// An optional token id: -1 when absent. Ids past the vocabulary are an error, except for padding, which some
// converters set to the vocabulary size to mean "none".
Result<int32_t> get_id(const io::GgufFile& f, std::string_view key, int32_t fallback, size_t n_vocab) {
  if (f.find(key) == nullptr) return fallback;
  MLXN_ASSIGN_OR_RETURN(const int64_t id, f.get<int64_t>(key));
  if (id < 0 || static_cast<uint64_t>(id) >= n_vocab) {
    if (key.ends_with("padding_token_id")) return -1;
    return error(StatusCode::FormatError, kOp, key, " = ", id, " is outside the vocabulary of ", n_vocab, " tokens");
  }
  return static_cast<int32_t>(id);
}

// tokenizer.ggml.pre values (llama.cpp's names) whose pre-tokenizer regex is one we implement.
bool pre_tokenizer_from_gguf(std::string_view name, PreTokenizer& out, bool& ignore_merges) {
  ignore_merges = false;
  for (std::string_view n : {"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"}) {
    if (name == n) {
      out = PreTokenizer::Llama3;
      ignore_merges = true;  // llama.cpp sets it for these, matching tokenizer.json's "ignore_merges": true
      return true;
    }
  }
  for (std::string_view n : {"qwen2", "deepseek-r1-qwen", "megrez"}) {
    if (name == n) {
      out = PreTokenizer::Qwen2;
      return true;
    }
  }
  for (std::string_view n : {"gpt-2", "gpt2", "phi-2", "roberta-bpe", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es",
                             "jina-v2-de", "jina-v2-code"}) {
    if (name == n) {
      out = PreTokenizer::Gpt2;
      return true;
    }
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const io::GgufFile& f) {
  TokenizerSpec spec;
  MLXN_ASSIGN_OR_RETURN(const std::string model, f.get<std::string>("tokenizer.ggml.model"));
  if (model == "gpt2") {
    spec.kind = TokenizerKind::ByteLevelBpe;
  } else if (model == "llama") {
    spec.kind = TokenizerKind::SentencePiece;
  } else {
    return unsupported(kOp, "tokenizer.ggml.model '", model, "' is not supported (gpt2 and llama are)");
  }

  MLXN_ASSIGN_OR_RETURN(spec.tokens, f.get<std::vector<std::string>>("tokenizer.ggml.tokens"));
  const size_t n = spec.tokens.size();
  if (f.find("tokenizer.ggml.token_type") != nullptr) {
    MLXN_ASSIGN_OR_RETURN(const std::vector<int32_t> types, f.get<std::vector<int32_t>>("tokenizer.ggml.token_type"));
    if (types.size() != n)
      return error(StatusCode::FormatError, kOp, "tokenizer.ggml.token_type has ", types.size(), " entries for ", n,
                   " tokens");
    spec.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 1 || types[i] > 6)
        return error(StatusCode::FormatError, kOp, "tokenizer.ggml.token_type[", i, "] = ", types[i],
                     " is not a token type (1 to 6)");
      spec.types.push_back(static_cast<TokenType>(types[i]));
    }
  }
  if (f.find("tokenizer.ggml.scores") != nullptr) {
    MLXN_ASSIGN_OR_RETURN(spec.scores, f.get<std::vector<float>>("tokenizer.ggml.scores"));
    if (spec.scores.size() != n)
      return error(StatusCode::FormatError, kOp, "tokenizer.ggml.scores has ", spec.scores.size(), " entries for ", n,
                   " tokens");
  }

  const bool spm = spec.kind == TokenizerKind::SentencePiece;
  if (!spm) {
    MLXN_ASSIGN_OR_RETURN(const std::vector<std::string_view> merges,
                          f.get<std::vector<std::string_view>>("tokenizer.ggml.merges"));
    spec.merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      // "left right"; neither part can hold a space (the byte alphabet spells it Ġ), but the first may start with
      // one in hand-made files, hence the search from 1 as in llama.cpp.
      const std::string_view m = merges[r];
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
      if (sp == std::string_view::npos || sp + 1 >= m.size())
        return error(StatusCode::FormatError, kOp, "tokenizer.ggml.merges[", r, "] = '", m,
                     "' is not two tokens separated by a space");
      spec.merges.emplace_back(std::string(m.substr(0, sp)), std::string(m.substr(sp + 1)));
    }
    MLXN_ASSIGN_OR_RETURN(const std::string pre, get_or<std::string>(f, "tokenizer.ggml.pre", "default"));
    // llama.cpp's "default" is a GPT-2-like regex set; GPT-2's own pattern is the closest we have.
    if (pre == "default") {
      spec.pre = PreTokenizer::Gpt2;
    } else if (!pre_tokenizer_from_gguf(pre, spec.pre, spec.ignore_merges)) {
      return unsupported(kOp, "tokenizer.ggml.pre '", pre,
                         "' is not supported (llama-bpe / llama3, qwen2, gpt-2 and their aliases are)");
    }
  }

  // llama.cpp's defaults for SentencePiece vocabularies without the keys: <unk> 0, <s> 1, </s> 2.
  MLXN_ASSIGN_OR_RETURN(spec.bos, get_id(f, "tokenizer.ggml.bos_token_id", spm && n > 1 ? 1 : -1, n));
  MLXN_ASSIGN_OR_RETURN(spec.eos, get_id(f, "tokenizer.ggml.eos_token_id", spm && n > 2 ? 2 : -1, n));
  MLXN_ASSIGN_OR_RETURN(spec.unk, get_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n));
  MLXN_ASSIGN_OR_RETURN(spec.eot, get_id(f, "tokenizer.ggml.eot_token_id", -1, n));
  MLXN_ASSIGN_OR_RETURN(spec.pad, get_id(f, "tokenizer.ggml.padding_token_id", -1, n));
  MLXN_ASSIGN_OR_RETURN(const int32_t eom, get_id(f, "tokenizer.ggml.eom_token_id", -1, n));
  if (eom >= 0) spec.end_of_generation.push_back(eom);

  // add_bos defaults: on for SentencePiece and for Llama 3's BPE (as llama.cpp), off otherwise.
  const bool bos_default = spm || spec.pre == PreTokenizer::Llama3;
  MLXN_ASSIGN_OR_RETURN(spec.add_bos, get_or<bool>(f, "tokenizer.ggml.add_bos_token", bos_default));
  MLXN_ASSIGN_OR_RETURN(spec.add_eos, get_or<bool>(f, "tokenizer.ggml.add_eos_token", false));
  MLXN_ASSIGN_OR_RETURN(spec.add_space_prefix, get_or<bool>(f, "tokenizer.ggml.add_space_prefix", spm));
  if (spec.add_bos && spec.bos < 0) spec.add_bos = false;
  if (spec.add_eos && spec.eos < 0) spec.add_eos = false;

  MLXN_ASSIGN_OR_RETURN(const std::string tmpl, get_or<std::string>(f, "tokenizer.chat_template", ""));
  if (spec.types.empty()) spec.types.assign(n, TokenType::Normal);
  detail::fill_end_of_turn(spec);
  spec.chat = detect_chat_format(tmpl, f.architecture(), spec.tokens);
  if (spec.chat == ChatFormat::ChatML) spec.chat_default_system = detail::default_system_prompt(tmpl);
  return create(std::move(spec));
}

}  // namespace mlxn::tok
