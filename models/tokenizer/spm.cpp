// SentencePiece-style BPE (GGUF "llama" vocabularies: Llama 2, Gemma): spaces become '▁', the text is split into
// characters, and the adjacent pair whose concatenation is the highest-scoring piece is merged (leftmost first
// among equal scores) until no concatenation is a piece. A character that is no piece falls back to its <0xXX>
// byte tokens, or to the unknown token. This is llama.cpp's llm_tokenizer_spm and sentencepiece's BPE model, with
// sentencepiece's rule that only normal and user-defined pieces are merge results (llama.cpp would also produce
// control or byte tokens from text that spells them).
#include <array>
#include <queue>
#include <unordered_map>

#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"

namespace mlxn::tok {
namespace {

using detail::kOp;

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

class SentencePiece final : public Tokenizer {
 public:
  explicit SentencePiece(TokenizerSpec spec) : Tokenizer(std::move(spec)) {}

  Status build() {
    MLXN_TRY(build_common());
    byte_id_.fill(-1);
    for (size_t i = 0; i < spec_.tokens.size(); ++i) {
      const TokenType t = spec_.types[i];
      if (t == TokenType::Byte) {
        const int b = detail::parse_byte_token(spec_.tokens[i]);
        if (b < 0)
          return error(StatusCode::FormatError, kOp, "byte token ", i, " '", spec_.tokens[i],
                       "' is not spelled <0xXX>");
        if (byte_id_[b] < 0) byte_id_[b] = static_cast<int32_t>(i);
      } else if (t == TokenType::Normal || t == TokenType::UserDefined) {
        pieces_.emplace(spec_.tokens[i], static_cast<int32_t>(i));
      }
    }
    return Status::ok();
  }

 protected:
  void encode_text(std::string_view fragment, bool after_special, std::vector<int32_t>& out) const override {
    // llama.cpp adds the space prefix to the text at the start and after every special token.
    std::string text;
    text.reserve(fragment.size() * 3 + 3);
    if (spec_.add_space_prefix && after_special) text += kSpace;
    for (char c : fragment) {
      if (c == ' ')
        text += kSpace;
      else
        text += c;
    }

    struct Sym {
      uint32_t offset, size;
      int32_t prev, next;
    };
    std::vector<Sym> sym;
    for (const unicode::Char& c : unicode::decode(text)) {
      const auto i = static_cast<int32_t>(sym.size());
      sym.push_back({c.offset, c.size, i - 1, i + 1});
    }
    if (sym.empty()) return;
    sym.back().next = -1;

    struct Candidate {
      float score;
      int32_t left, right;
      uint32_t size;
      bool operator<(const Candidate& o) const { return score != o.score ? score < o.score : left > o.left; }
    };
    std::priority_queue<Candidate> queue;
    auto consider = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const uint32_t size = sym[left].size + sym[right].size;
      auto it = pieces_.find(std::string_view(text).substr(sym[left].offset, size));
      if (it == pieces_.end()) return;
      const float score = spec_.scores.empty() ? 0.0f : spec_.scores[it->second];
      queue.push({score, left, right, size});
    };
    for (size_t i = 1; i < sym.size(); ++i) consider(static_cast<int32_t>(i) - 1, static_cast<int32_t>(i));
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Sym& l = sym[c.left];
      Sym& r = sym[c.right];
      // Stale: either side was merged since (a merged-away symbol has size 0; a grown one a new size).
      if (l.size == 0 || r.size == 0 || l.size + r.size != c.size) continue;
      l.size += r.size;
      r.size = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = c.left;
      consider(l.prev, c.left);
      consider(c.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = sym[i].next) {
      const std::string_view s = std::string_view(text).substr(sym[i].offset, sym[i].size);
      if (auto it = pieces_.find(s); it != pieces_.end()) {
        out.push_back(it->second);
        continue;
      }
      // Only single characters can miss: merge results are pieces by construction.
      bool all_bytes = true;
      for (char c : s) all_bytes = all_bytes && byte_id_[static_cast<uint8_t>(c)] >= 0;
      if (all_bytes) {
        for (char c : s) out.push_back(byte_id_[static_cast<uint8_t>(c)]);
      } else if (spec_.unk >= 0) {
        out.push_back(spec_.unk);
      }
    }
  }

  void append_normal_piece(int32_t id, std::string& out) const override {
    const std::string& t = spec_.tokens[id];
    size_t i = 0;
    while (i < t.size()) {
      if (t.compare(i, kSpace.size(), kSpace) == 0) {
        out += ' ';
        i += kSpace.size();
      } else {
        out += t[i++];
      }
    }
  }

 private:
  std::unordered_map<std::string_view, int32_t> pieces_;  // normal and user-defined pieces
  std::array<int32_t, 256> byte_id_{};
};

}  // namespace

namespace detail {
Result<std::unique_ptr<Tokenizer>> make_sentencepiece(TokenizerSpec spec) {
  auto tok = std::make_unique<SentencePiece>(std::move(spec));
  MLXN_TRY(tok->build());
  return std::unique_ptr<Tokenizer>(std::move(tok));
}
}  // namespace detail

}  // namespace mlxn::tok
