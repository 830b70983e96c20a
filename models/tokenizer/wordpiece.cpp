// WordPiece tokenizer (conventions in wordpiece.h).
#include "tokenizer/wordpiece.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mlxn/io/gguf.h"
#include "tokenizer/unicode.h"

namespace mlxn::tok {
namespace {

constexpr std::string_view kOp = "wordpiece";

bool in_ranges(const wordpiece_tables::Range* r, size_t n, uint32_t cp) {
  const auto* end = r + n;
  const auto* it =
      std::upper_bound(r, end, cp, [](uint32_t v, const wordpiece_tables::Range& x) { return v < x.first; });
  if (it == r) return false;
  --it;
  return cp <= it->last;
}

// Rust's char::is_whitespace (the White_Space property) plus the BERT code's explicit \t \n \r.
bool is_ws(uint32_t cp) { return cp == '\t' || cp == '\n' || cp == '\r' || unicode::is_whitespace(cp); }

Result<std::string> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return error(StatusCode::NotFound, kOp, "cannot open ", p.string());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

namespace wordpiece {

bool is_punctuation(uint32_t cp) {
  const bool ascii =
      (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  return ascii || in_ranges(wordpiece_tables::kPunctuation, wordpiece_tables::kPunctuationCount, cp);
}

bool is_control(uint32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return in_ranges(wordpiece_tables::kOther, wordpiece_tables::kOtherCount, cp);
}

bool is_chinese_char(uint32_t cp) {
  // The CJK Unified Ideographs blocks the BERT code lists (not Hiragana, Katakana or Hangul).
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool is_mark_nonspacing(uint32_t cp) {
  return in_ranges(wordpiece_tables::kMarkNonspacing, wordpiece_tables::kMarkNonspacingCount, cp);
}

void append_lower(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp < 0x80) {
    out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  using wordpiece_tables::kLower;
  const auto* end = kLower + wordpiece_tables::kLowerCount;
  const auto* it =
      std::lower_bound(kLower, end, cp, [](const wordpiece_tables::LowerEntry& e, uint32_t v) { return e.cp < v; });
  if (it != end && it->cp == cp) {
    out.insert(out.end(), wordpiece_tables::kLowerData + it->offset,
               wordpiece_tables::kLowerData + it->offset + it->size);
    return;
  }
  out.push_back(cp);
}

void append_nfd(uint32_t cp, std::vector<uint32_t>& out) {
  // Hangul syllables decompose algorithmically (Unicode chapter 3.12).
  constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
  constexpr uint32_t kTCount = 28, kNCount = 21 * kTCount, kSCount = 19 * kNCount;
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  using unicode::kDecompositions;
  const auto* end = kDecompositions + unicode::kDecompositionsCount;
  const auto* it =
      std::lower_bound(kDecompositions, end, cp, [](const unicode::Decomposition& d, uint32_t v) { return d.cp < v; });
  if (it != end && it->cp == cp) {
    out.insert(out.end(), unicode::kDecompositionData + it->offset,
               unicode::kDecompositionData + it->offset + it->size);
    return;
  }
  out.push_back(cp);
}

}  // namespace wordpiece

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::create(WordPieceSpec spec) {
  std::unique_ptr<WordPieceTokenizer> t(new WordPieceTokenizer(std::move(spec)));
  const auto& v = t->spec_.vocab;
  if (v.empty()) return invalid_argument(kOp, "empty vocabulary");
  t->ids_.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    if (!t->ids_.emplace(v[i], static_cast<int32_t>(i)).second)
      return invalid_argument(kOp, "token '", v[i], "' appears twice in the vocabulary (ids ", t->ids_[v[i]], " and ",
                              i, ")");
  auto need = [&](const std::string& s, int32_t& id) -> Status {
    auto f = t->token_id(s);
    if (!f) return invalid_argument(kOp, "the vocabulary has no '", s, "'");
    id = *f;
    return Status::ok();
  };
  MLXN_TRY(need(t->spec_.unk, t->unk_));
  MLXN_TRY(need(t->spec_.cls, t->cls_));
  MLXN_TRY(need(t->spec_.sep, t->sep_));
  if (auto p = t->token_id(t->spec_.pad)) t->pad_ = *p;
  // Longest first, so that the leftmost match found is also the longest there.
  std::stable_sort(t->spec_.added.begin(), t->spec_.added.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& a : t->spec_.added) {
    if (a.empty()) return invalid_argument(kOp, "an added token is empty");
    int32_t id = -1;
    MLXN_TRY(need(a, id));
    t->added_ids_.push_back(id);
  }
  return t;
}

const std::string& WordPieceTokenizer::token_text(int32_t id) const {
  static const std::string kEmpty;
  return id >= 0 && id < n_vocab() ? spec_.vocab[static_cast<size_t>(id)] : kEmpty;
}

std::optional<int32_t> WordPieceTokenizer::token_id(std::string_view text) const {
  auto it = ids_.find(std::string(text));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string WordPieceTokenizer::normalize(std::string_view text) const {
  const auto& o = spec_.normalizer;
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (const auto& ch : unicode::decode(text)) {
    const uint32_t cp = ch.cp;
    if (o.clean_text) {
      if (cp == unicode::kInvalid || cp == 0 || cp == 0xFFFD || wordpiece::is_control(cp)) continue;
      if (is_ws(cp)) {
        cps.push_back(' ');
        continue;
      }
    } else if (cp == unicode::kInvalid) {
      continue;
    }
    if (o.handle_chinese_chars && wordpiece::is_chinese_char(cp)) {
      cps.insert(cps.end(), {' ', cp, ' '});
      continue;
    }
    cps.push_back(cp);
  }
  if (o.strip_accents.value_or(o.lowercase)) {
    std::vector<uint32_t> d;
    d.reserve(cps.size());
    for (uint32_t cp : cps) wordpiece::append_nfd(cp, d);
    // Canonical ordering of each run of combining marks (the marks that survive the filter keep NFD's order).
    for (size_t i = 0; i < d.size();) {
      if (unicode::combining_class(d[i]) == 0) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < d.size() && unicode::combining_class(d[j]) != 0) ++j;
      std::stable_sort(
          d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
          [](uint32_t a, uint32_t b) { return unicode::combining_class(a) < unicode::combining_class(b); });
      i = j;
    }
    cps.clear();
    for (uint32_t cp : d)
      if (!wordpiece::is_mark_nonspacing(cp)) cps.push_back(cp);
  }
  if (o.lowercase) {
    std::vector<uint32_t> l;
    l.reserve(cps.size());
    for (uint32_t cp : cps) wordpiece::append_lower(cp, l);
    cps.swap(l);
  }
  std::string out;
  out.reserve(cps.size());
  for (uint32_t cp : cps) unicode::append_utf8(out, cp);
  return out;
}

std::vector<std::string> WordPieceTokenizer::pre_tokenize(std::string_view normalized) const {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  for (const auto& ch : unicode::decode(normalized)) {
    if (ch.cp == unicode::kInvalid) continue;
    if (is_ws(ch.cp)) {
      flush();
    } else if (wordpiece::is_punctuation(ch.cp)) {
      flush();
      words.emplace_back(normalized.substr(ch.offset, ch.size));
    } else {
      cur.append(normalized.substr(ch.offset, ch.size));
    }
  }
  flush();
  return words;
}

std::vector<int32_t> WordPieceTokenizer::word_pieces(std::string_view word) const {
  const auto chars = unicode::decode(word);
  if (chars.empty()) return {};
  if (chars.size() > spec_.max_input_chars_per_word) return {unk_};
  std::vector<int32_t> out;
  size_t start = 0;  // index into chars
  std::string piece;
  while (start < chars.size()) {
    size_t end = chars.size();
    int32_t found = -1;
    while (end > start) {
      const size_t b = chars[start].offset, e = chars[end - 1].offset + chars[end - 1].size;
      piece.assign(start > 0 ? spec_.prefix : std::string());
      piece.append(word.substr(b, e - b));
      auto it = ids_.find(piece);
      if (it != ids_.end()) {
        found = it->second;
        break;
      }
      --end;
    }
    if (found < 0) return {unk_};  // the whole word is unknown, not just the rest
    out.push_back(found);
    start = end;
  }
  return out;
}

void WordPieceTokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  for (const auto& w : pre_tokenize(normalize(text))) {
    const auto p = word_pieces(w);
    out.insert(out.end(), p.begin(), p.end());
  }
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, bool add_special, int64_t max_length) const {
  std::vector<int32_t> ids;
  // Added tokens first: at each position the longest one that matches there, the text between them tokenized.
  size_t done = 0, i = 0;
  while (i < text.size()) {
    int32_t hit = -1;
    size_t len = 0;
    for (size_t a = 0; a < spec_.added.size(); ++a)
      if (text.substr(i).starts_with(spec_.added[a])) {
        hit = added_ids_[a];
        len = spec_.added[a].size();
        break;
      }
    if (hit < 0) {
      ++i;
      continue;
    }
    encode_text(text.substr(done, i - done), ids);
    ids.push_back(hit);
    i += len;
    done = i;
  }
  encode_text(text.substr(done), ids);
  const int64_t limit = max_length == 0 ? spec_.max_length : max_length;
  const int64_t room = limit > 0 ? std::max<int64_t>(limit - (add_special ? 2 : 0), 0) : -1;
  if (room >= 0 && static_cast<int64_t>(ids.size()) > room) ids.resize(static_cast<size_t>(room));
  if (add_special) {
    ids.insert(ids.begin(), cls_);
    ids.push_back(sep_);
  }
  return ids;
}

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::from_tokenizer_json(std::string_view text) {
  // value() and get() throw on a field of the wrong type: that is a malformed file, reported as such.
  try {
    return parse_tokenizer_json(text);
  } catch (const nlohmann::json::exception& e) {
    return error(StatusCode::FormatError, kOp, "tokenizer.json: ", e.what());
  }
}

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::parse_tokenizer_json(std::string_view text) {
  using nlohmann::json;
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return error(StatusCode::FormatError, kOp, "tokenizer.json is not JSON");
  if (!j.contains("model") || !j["model"].is_object())
    return error(StatusCode::FormatError, kOp, "tokenizer.json has no model");
  const json& m = j["model"];
  if (m.value("type", std::string()) != "WordPiece")
    return unsupported(kOp, "tokenizer.json model type '", m.value("type", std::string()), "' (expected WordPiece)");
  WordPieceSpec spec;
  if (!m.contains("vocab") || !m["vocab"].is_object())
    return error(StatusCode::FormatError, kOp, "tokenizer.json model.vocab is not an object");
  int64_t max_id = -1;
  for (const auto& [tok, id] : m["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24))
      return error(StatusCode::FormatError, kOp, "tokenizer.json vocab id of '", tok, "' is not a valid id");
    max_id = std::max(max_id, id.get<int64_t>());
  }
  spec.vocab.resize(static_cast<size_t>(max_id + 1));
  for (const auto& [tok, id] : m["vocab"].items()) spec.vocab[static_cast<size_t>(id.get<int64_t>())] = tok;
  spec.unk = m.value("unk_token", spec.unk);
  spec.prefix = m.value("continuing_subword_prefix", spec.prefix);
  spec.max_input_chars_per_word = m.value("max_input_chars_per_word", spec.max_input_chars_per_word);
  if (j.contains("normalizer") && j["normalizer"].is_object()) {
    const json& n = j["normalizer"];
    if (n.value("type", std::string()) != "BertNormalizer")
      return unsupported(kOp, "normalizer '", n.value("type", std::string()), "' (expected BertNormalizer)");
    spec.normalizer.clean_text = n.value("clean_text", true);
    spec.normalizer.handle_chinese_chars = n.value("handle_chinese_chars", true);
    spec.normalizer.lowercase = n.value("lowercase", true);
    if (n.contains("strip_accents") && n["strip_accents"].is_boolean())
      spec.normalizer.strip_accents = n["strip_accents"].get<bool>();
  } else {
    spec.normalizer = {false, false, false, false};
  }
  // [CLS] / [SEP] from the template post-processor where it names them.
  if (j.contains("post_processor") && j["post_processor"].is_object()) {
    const json& pp = j["post_processor"];
    if (pp.contains("cls") && pp["cls"].is_array() && !pp["cls"].empty()) spec.cls = pp["cls"][0].get<std::string>();
    if (pp.contains("sep") && pp["sep"].is_array() && !pp["sep"].empty()) spec.sep = pp["sep"][0].get<std::string>();
    if (pp.contains("single") && pp["single"].is_array()) {
      const json& s = pp["single"];
      if (s.size() >= 3 && s.front().contains("SpecialToken") && s.back().contains("SpecialToken")) {
        spec.cls = s.front()["SpecialToken"].value("id", spec.cls);
        spec.sep = s.back()["SpecialToken"].value("id", spec.sep);
      }
    }
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& a : j["added_tokens"])
      if (a.is_object() && a.contains("content") && a["content"].is_string())
        spec.added.push_back(a["content"].get<std::string>());
  if (j.contains("padding") && j["padding"].is_object()) spec.pad = j["padding"].value("pad_token", spec.pad);
  if (j.contains("truncation") && j["truncation"].is_object())
    spec.max_length = j["truncation"].value("max_length", spec.max_length);
  return create(std::move(spec));
}

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::from_vocab_txt(std::string_view text,
                                                                               const BertNormalizerOptions& norm) {
  WordPieceSpec spec;
  spec.normalizer = norm;
  size_t b = 0;
  while (b < text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    std::string_view line = text.substr(b, e - b);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    spec.vocab.emplace_back(line);
    b = e + 1;
  }
  for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
    if (std::find(spec.vocab.begin(), spec.vocab.end(), s) != spec.vocab.end()) spec.added.emplace_back(s);
  return create(std::move(spec));
}

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::from_hf_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  std::error_code ec;
  std::unique_ptr<WordPieceTokenizer> t;
  if (fs::exists(root / "tokenizer.json", ec)) {
    MLXN_ASSIGN_OR_RETURN(std::string js, read_file(root / "tokenizer.json"));
    MLXN_ASSIGN_OR_RETURN(t, from_tokenizer_json(js));
  } else if (fs::exists(root / "vocab.txt", ec)) {
    BertNormalizerOptions norm;
    if (fs::exists(root / "tokenizer_config.json", ec)) {
      MLXN_ASSIGN_OR_RETURN(std::string cfg, read_file(root / "tokenizer_config.json"));
      const auto c = nlohmann::json::parse(cfg, nullptr, false);
      if (c.is_object()) {
        norm.lowercase = c.value("do_lower_case", true);
        norm.handle_chinese_chars = c.value("tokenize_chinese_chars", true);
        if (c.contains("strip_accents") && c["strip_accents"].is_boolean())
          norm.strip_accents = c["strip_accents"].get<bool>();
      }
    }
    MLXN_ASSIGN_OR_RETURN(std::string vocab, read_file(root / "vocab.txt"));
    MLXN_ASSIGN_OR_RETURN(t, from_vocab_txt(vocab, norm));
  } else {
    return error(StatusCode::NotFound, kOp, dir, " has neither tokenizer.json nor vocab.txt");
  }
  // sentence-transformers truncates to its own max_seq_length.
  if (fs::exists(root / "sentence_bert_config.json", ec)) {
    MLXN_ASSIGN_OR_RETURN(std::string sb, read_file(root / "sentence_bert_config.json"));
    const auto c = nlohmann::json::parse(sb, nullptr, false);
    if (c.is_object() && c.contains("max_seq_length") && c["max_seq_length"].is_number_integer())
      t->set_max_length(c["max_seq_length"].get<int64_t>());
  }
  return t;
}

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::from_gguf(const io::GgufFile& f) {
  MLXN_ASSIGN_OR_RETURN(std::string model, f.get<std::string>("tokenizer.ggml.model"));
  if (model != "bert") return unsupported(kOp, f.path(), ": tokenizer.ggml.model '", model, "' (expected bert)");
  MLXN_ASSIGN_OR_RETURN(auto tokens, f.get<std::vector<std::string>>("tokenizer.ggml.tokens"));
  WordPieceSpec spec;
  constexpr std::string_view kWordStart = "\xE2\x96\x81";  // U+2581
  for (const auto& t : tokens) {
    if (t.starts_with(kWordStart)) {
      spec.vocab.push_back(t.substr(kWordStart.size()));
    } else if (t.size() >= 2 && t.front() == '[' && t.back() == ']') {
      spec.vocab.push_back(t);
      // Only BERT's five specials are added tokens in Hugging Face's file ([unusedN] are not).
      for (const char* sp : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
        if (t == sp) spec.added.push_back(t);
    } else {
      spec.vocab.push_back("##" + t);
    }
  }
  auto id_text = [&](const char* key, std::string& out) -> Status {
    if (f.find(key) == nullptr) return Status::ok();
    MLXN_ASSIGN_OR_RETURN(int64_t id, f.get<int64_t>(key));
    if (id < 0 || id >= static_cast<int64_t>(spec.vocab.size()))
      return invalid_argument(kOp, key, " = ", id, " is outside the vocabulary of ", spec.vocab.size());
    out = spec.vocab[static_cast<size_t>(id)];
    return Status::ok();
  };
  MLXN_TRY(id_text("tokenizer.ggml.unknown_token_id", spec.unk));
  MLXN_TRY(id_text("tokenizer.ggml.cls_token_id", spec.cls));
  MLXN_TRY(id_text("tokenizer.ggml.seperator_token_id", spec.sep));  // llama.cpp's spelling
  MLXN_TRY(id_text("tokenizer.ggml.padding_token_id", spec.pad));
  if (f.find("bert.context_length") != nullptr) {
    MLXN_ASSIGN_OR_RETURN(spec.max_length, f.get<int64_t>("bert.context_length"));
  }
  return create(std::move(spec));
}

}  // namespace mlxn::tok
