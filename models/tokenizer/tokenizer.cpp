// The parts every tokenizer shares: validation, special-token splitting, decoding (batch and streaming), the
// end-of-generation set and the built-in chat templates.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>

#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"

namespace mlxn::tok {

using detail::kOp;

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::None:
      return "none";
    case ChatFormat::Llama3:
      return "llama3";
    case ChatFormat::ChatML:
      return "chatml";
    case ChatFormat::Gemma:
      return "gemma";
  }
  return "?";
}

Tokenizer::Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::create(TokenizerSpec spec) {
  switch (spec.kind) {
    case TokenizerKind::ByteLevelBpe:
      return detail::make_byte_level_bpe(std::move(spec));
    case TokenizerKind::SentencePiece:
      return detail::make_sentencepiece(std::move(spec));
  }
  return invalid_argument(kOp, "unknown tokenizer kind");
}

Status Tokenizer::build_common() {
  TokenizerSpec& s = spec_;
  const size_t n = s.tokens.size();
  if (n == 0) return error(StatusCode::FormatError, kOp, "the vocabulary is empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return error(StatusCode::FormatError, kOp, "the vocabulary has ", n, " tokens, more than int32 ids can name");
  if (s.types.empty()) s.types.assign(n, TokenType::Normal);
  if (s.types.size() != n)
    return error(StatusCode::FormatError, kOp, "token types has ", s.types.size(), " entries for ", n, " tokens");
  for (size_t i = 0; i < n; ++i) {
    const auto t = static_cast<int>(s.types[i]);
    if (t < 1 || t > 6) return error(StatusCode::FormatError, kOp, "token ", i, " has unknown token type ", t);
  }
  if (!s.scores.empty() && s.scores.size() != n)
    return error(StatusCode::FormatError, kOp, "scores has ", s.scores.size(), " entries for ", n, " tokens");

  auto check_id = [&](int32_t id, const char* what) -> Status {
    if (id < -1 || id >= static_cast<int32_t>(n))
      return error(StatusCode::FormatError, kOp, what, " id ", id, " is outside the vocabulary of ", n, " tokens");
    return Status::ok();
  };
  MLXN_TRY(check_id(s.bos, "bos"));
  MLXN_TRY(check_id(s.eos, "eos"));
  MLXN_TRY(check_id(s.eot, "eot"));
  MLXN_TRY(check_id(s.pad, "padding"));
  MLXN_TRY(check_id(s.unk, "unknown"));
  for (int32_t id : s.end_of_generation) MLXN_TRY(check_id(id, "end-of-generation"));
  for (int32_t id : s.lstrip) MLXN_TRY(check_id(id, "lstrip"));
  for (int32_t id : s.rstrip) MLXN_TRY(check_id(id, "rstrip"));
  if (s.add_bos && s.bos < 0) return error(StatusCode::FormatError, kOp, "add_bos is set but there is no bos id");
  if (s.add_eos && s.eos < 0) return error(StatusCode::FormatError, kOp, "add_eos is set but there is no eos id");

  // Lookup by text: Normal tokens first so that they win over a special token of the same spelling.
  by_text_.reserve(n);
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < n; ++i) {
      const bool normal = s.types[i] == TokenType::Normal;
      if (normal != (pass == 0)) continue;
      by_text_.emplace(s.tokens[i], static_cast<int32_t>(i));
      if (normal) normal_.emplace(s.tokens[i], static_cast<int32_t>(i));
    }
  }

  specials_by_byte_.assign(256, {});
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = s.types[i];
    if ((t != TokenType::Control && t != TokenType::UserDefined) || s.tokens[i].empty()) continue;
    specials_by_byte_[static_cast<uint8_t>(s.tokens[i][0])].push_back(
        {s.tokens[i], static_cast<int32_t>(i), t == TokenType::Control});
  }
  for (auto& v : specials_by_byte_)
    std::stable_sort(v.begin(), v.end(),
                     [](const Special& a, const Special& b) { return a.text.size() > b.text.size(); });

  eog_.assign(n, 0);
  lstrip_.assign(n, 0);
  rstrip_.assign(n, 0);
  if (s.eos >= 0) eog_[s.eos] = 1;
  if (s.eot >= 0) eog_[s.eot] = 1;
  for (int32_t id : s.end_of_generation) eog_[id] = 1;
  for (int32_t id : s.lstrip) lstrip_[id] = 1;
  for (int32_t id : s.rstrip) rstrip_[id] = 1;
  return Status::ok();
}

int32_t Tokenizer::find_normal(std::string_view text) const {
  auto it = normal_.find(text);
  return it == normal_.end() ? -1 : it->second;
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string empty;
  return id >= 0 && id < n_vocab() ? spec_.tokens[id] : empty;
}

std::optional<int32_t> Tokenizer::token_id(std::string_view text) const {
  auto it = by_text_.find(text);
  if (it == by_text_.end()) return std::nullopt;
  return it->second;
}

TokenType Tokenizer::token_type(int32_t id) const {
  return id >= 0 && id < n_vocab() ? spec_.types[id] : TokenType::Unused;
}

bool Tokenizer::is_special(int32_t id) const {
  const TokenType t = token_type(id);
  return t == TokenType::Control || t == TokenType::Unknown || t == TokenType::Unused;
}

bool Tokenizer::is_end_of_generation(int32_t id) const { return id >= 0 && id < n_vocab() && eog_[id] != 0; }

// ---- encoding --------------------------------------------------------------------------------------------------

namespace {
// Bytes of the whitespace run that ends `s` / starts `text` at `begin` (lstrip / rstrip of added tokens).
size_t trailing_whitespace(std::string_view s) {
  const std::vector<unicode::Char> chars = unicode::decode(s);
  size_t k = chars.size();
  while (k > 0 && unicode::is_whitespace(chars[k - 1].cp)) --k;
  return k == chars.size() ? 0 : s.size() - chars[k].offset;
}
size_t whitespace_after(std::string_view text, size_t begin) {
  size_t k = begin;
  while (k < text.size()) {
    uint32_t cp = 0;
    const size_t len = unicode::decode_one(text.substr(k), cp);
    if (len == 0 || !unicode::is_whitespace(cp)) break;
    k += len;
  }
  return k - begin;
}
}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  const bool want_bos = add_special && spec_.add_bos && spec_.bos >= 0;
  if (want_bos) out.push_back(spec_.bos);

  bool after_special = true;
  size_t start = 0;  // of the text not yet tokenized
  size_t i = 0;
  while (i < text.size()) {
    const Special* hit = nullptr;
    for (const Special& sp : specials_by_byte_[static_cast<uint8_t>(text[i])]) {
      if (sp.control && !parse_special) continue;
      if (text.substr(i, sp.text.size()) == sp.text) {
        hit = &sp;  // the longest, since candidates are sorted by length
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    size_t frag_end = i;
    if (lstrip_[hit->id]) frag_end -= trailing_whitespace(text.substr(start, i - start));
    if (frag_end > start) encode_text(text.substr(start, frag_end - start), after_special, out);
    out.push_back(hit->id);
    after_special = true;
    i += hit->text.size();
    if (rstrip_[hit->id]) i += whitespace_after(text, i);
    start = i;
  }
  if (start < text.size()) encode_text(text.substr(start), after_special, out);

  // A prompt that already spells out BOS (chat templates do) must not get a second one.
  if (want_bos && out.size() >= 2 && out[1] == spec_.bos) out.erase(out.begin());
  if (add_special && spec_.add_eos && spec_.eos >= 0) out.push_back(spec_.eos);
  return out;
}

// ---- decoding --------------------------------------------------------------------------------------------------

void Tokenizer::append_decoded(int32_t id, bool render_special, bool& first, std::string& out) const {
  if (id < 0 || id >= n_vocab()) return;
  const std::string& text = spec_.tokens[id];
  switch (spec_.types[id]) {
    case TokenType::Normal: {
      const size_t at = out.size();
      append_normal_piece(id, out);
      // SentencePiece's dummy prefix: the first text token's leading space is not part of the text.
      if (first && spec_.kind == TokenizerKind::SentencePiece && spec_.add_space_prefix && out.size() > at &&
          out[at] == ' ')
        out.erase(at, 1);
      first = false;
      return;
    }
    case TokenType::Byte: {
      const int b = detail::parse_byte_token(text);
      if (b >= 0)
        out += static_cast<char>(b);
      else
        append_normal_piece(id, out);
      first = false;
      return;
    }
    case TokenType::UserDefined:
      out += text;
      first = false;
      return;
    case TokenType::Control:
    case TokenType::Unknown:
    case TokenType::Unused:
      if (render_special) out += text;
      return;
  }
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  bool first = true;
  for (int32_t id : ids) append_decoded(id, render_special, first, out);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  std::string out;
  bool first = false;
  append_decoded(id, true, first, out);
  return out;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tok_(tokenizer), render_special_(render_special) {}

namespace {
// Whether `s`, shorter than the sequence its lead byte announces, can still be completed into a valid character.
bool completable_prefix(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  for (size_t i = 1; i < s.size(); ++i)
    if ((static_cast<uint8_t>(s[i]) & 0xC0) != 0x80) return false;
  if (s.size() >= 2) {
    const auto b1 = static_cast<uint8_t>(s[1]);
    // The second byte ranges that exclude overlong forms, surrogates and code points past U+10FFFF.
    if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 > 0x9F) || (b0 == 0xF0 && b1 < 0x90) ||
        (b0 == 0xF4 && b1 > 0x8F))
      return false;
  }
  return true;
}
}  // namespace

std::string StreamDecoder::push(int32_t id) {
  tok_.append_decoded(id, render_special_, first_, pending_);
  size_t i = 0;
  while (i < pending_.size()) {
    const size_t len = unicode::sequence_length(static_cast<uint8_t>(pending_[i]));
    if (len == 0) {  // cannot start a character: pass the byte through
      ++i;
      continue;
    }
    if (i + len > pending_.size()) {
      if (completable_prefix(std::string_view(pending_).substr(i))) break;  // wait for the next token
      ++i;
      continue;
    }
    uint32_t cp = 0;
    i += unicode::decode_one(std::string_view(pending_).substr(i, len), cp) == len ? len : 1;
  }
  std::string out = pending_.substr(0, i);
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = std::move(pending_);
  pending_.clear();
  first_ = true;
  return out;
}

// ---- chat templates --------------------------------------------------------------------------------------------

namespace {
// Jinja's trim (Python's str.strip()): whitespace in the Unicode sense, plus the separators U+001C..U+001F.
std::string_view trim(std::string_view s) {
  auto space = [](uint32_t cp) { return unicode::is_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F); };
  const std::vector<unicode::Char> chars = unicode::decode(s);
  size_t a = 0, b = chars.size();
  while (a < b && space(chars[a].cp)) ++a;
  while (b > a && space(chars[b - 1].cp)) --b;
  if (a == b) return {};
  return s.substr(chars[a].offset, chars[b - 1].offset + chars[b - 1].size - chars[a].offset);
}
}  // namespace

Result<std::string> Tokenizer::apply_chat_template(std::span<const ChatMessage> messages,
                                                   bool add_generation_prompt) const {
  const std::string bos = spec_.bos >= 0 ? spec_.tokens[spec_.bos] : std::string();
  std::string out;
  switch (spec_.chat) {
    case ChatFormat::None:
      return unsupported(kOp, "this vocabulary has no known chat format");
    case ChatFormat::Llama3:
      // Llama 3's template: BOS before the first message, content trimmed.
      for (size_t i = 0; i < messages.size(); ++i) {
        if (i == 0) out += bos;
        out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n";
        out += trim(messages[i].content);
        out += "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    case ChatFormat::ChatML:
      // Qwen: no BOS, content verbatim; some versions open with a default system turn.
      if (!spec_.chat_default_system.empty() && (messages.empty() || messages[0].role != "system"))
        out += "<|im_start|>system\n" + spec_.chat_default_system + "<|im_end|>\n";
      for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    case ChatFormat::Gemma: {
      // Gemma 3's template: BOS, a system message folded into the first turn, "assistant" named "model", turns
      // strictly alternating user / model, content trimmed.
      out += bos;
      size_t first = 0;
      std::string prefix;
      if (!messages.empty() && messages[0].role == "system") {
        prefix = messages[0].content + "\n\n";
        first = 1;
      }
      for (size_t i = first; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        const bool user_turn = (i - first) % 2 == 0;
        if ((m.role == "user") != user_turn)
          return invalid_argument(kOp, "chat roles must alternate user/assistant; message ", i, " has role '", m.role,
                                  "'");
        out += "<start_of_turn>" + (m.role == "assistant" ? std::string("model") : m.role) + "\n";
        if (i == first) out += prefix;
        out += trim(m.content);
        out += "<end_of_turn>\n";
      }
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      return out;
    }
  }
  return unsupported(kOp, "unknown chat format");
}

ChatFormat detect_chat_format(std::string_view template_text, std::string_view architecture,
                              const std::vector<std::string>& tokens) {
  if (template_text.find("<|start_header_id|>") != std::string_view::npos) return ChatFormat::Llama3;
  if (template_text.find("<|im_start|>") != std::string_view::npos) return ChatFormat::ChatML;
  if (template_text.find("<start_of_turn>") != std::string_view::npos) return ChatFormat::Gemma;
  auto has = [&](std::string_view t) { return std::find(tokens.begin(), tokens.end(), t) != tokens.end(); };
  if (architecture.starts_with("gemma")) return ChatFormat::Gemma;
  if (architecture.starts_with("qwen")) return ChatFormat::ChatML;
  if (architecture == "llama" && has("<|start_header_id|>")) return ChatFormat::Llama3;
  if (has("<|im_start|>")) return ChatFormat::ChatML;
  if (has("<start_of_turn>")) return ChatFormat::Gemma;
  if (has("<|start_header_id|>")) return ChatFormat::Llama3;
  return ChatFormat::None;
}

namespace detail {

int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int v = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = text[i];
    int d = -1;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

void fill_end_of_turn(TokenizerSpec& spec) {
  auto find_special = [&](std::string_view text) -> int32_t {
    for (size_t i = 0; i < spec.tokens.size(); ++i) {
      const TokenType t = spec.types.empty() ? TokenType::Normal : spec.types[i];
      if ((t == TokenType::Control || t == TokenType::UserDefined) && spec.tokens[i] == text)
        return static_cast<int32_t>(i);
    }
    return -1;
  };
  if (spec.eot < 0) {
    for (std::string_view t : {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>"}) {
      if ((spec.eot = find_special(t)) >= 0) break;
    }
  }
  for (std::string_view t :
       {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|end|>"}) {
    const int32_t id = find_special(t);
    if (id >= 0 &&
        std::find(spec.end_of_generation.begin(), spec.end_of_generation.end(), id) == spec.end_of_generation.end())
      spec.end_of_generation.push_back(id);
  }
}

std::string default_system_prompt(std::string_view template_text) {
  // Qwen2.5 names itself; Qwen2 and Qwen1.5 use the generic sentence; Qwen3 adds none.
  static constexpr std::string_view kQwen25 = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
  static constexpr std::string_view kQwen2 = "You are a helpful assistant.";
  if (template_text.find(kQwen25) != std::string_view::npos) return std::string(kQwen25);
  if (template_text.find("<|im_start|>system\\n" + std::string(kQwen2)) != std::string_view::npos)
    return std::string(kQwen2);
  return {};
}

}  // namespace detail

}  // namespace mlxn::tok
