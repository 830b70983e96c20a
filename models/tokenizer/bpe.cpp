// Byte-level BPE (GPT-2, Llama 3, Qwen2/3): each pre-token's bytes become tokens of GPT-2's byte alphabet, then the
// adjacent pair with the lowest merge rank is merged, leftmost first among equal ranks, until no pair has a rank.
// This is what Hugging Face's BPE model and llama.cpp's llm_tokenizer_bpe both compute.
#include <array>
#include <queue>
#include <unordered_map>

#include "tokenizer/impl.h"
#include "tokenizer/unicode.h"

namespace mlxn::tok {
namespace {

using detail::kOp;

class ByteLevelBpe final : public Tokenizer {
 public:
  explicit ByteLevelBpe(TokenizerSpec spec) : Tokenizer(std::move(spec)) {}

  Status build() {
    MLXN_TRY(build_common());
    const auto& alphabet = unicode::byte_to_codepoint();
    for (int b = 0; b < 256; ++b) {
      byte_text_[b].clear();
      unicode::append_utf8(byte_text_[b], alphabet[b]);
      byte_id_[b] = find_normal(byte_text_[b]);
    }
    const auto& merges = spec_.merges;
    ranks_.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      const auto& [a, b] = merges[r];
      // Hugging Face refuses merges whose parts or result are not tokens; so do we.
      const int32_t ia = find_normal(a), ib = find_normal(b), im = find_normal(a + b);
      if (ia < 0 || ib < 0 || im < 0) {
        const std::string& missing = ia < 0 ? a : ib < 0 ? b : a + b;
        return error(StatusCode::FormatError, kOp, "merge ", r, " ('", a, "' '", b, "'): '", missing,
                     "' is not a normal token of the vocabulary");
      }
      // A repeated merge keeps its first (best) rank, as llama.cpp does.
      ranks_.emplace(key(ia, ib), Merge{static_cast<int32_t>(r), im});
    }
    return Status::ok();
  }

 protected:
  void encode_text(std::string_view text, bool /*after_special*/, std::vector<int32_t>& out) const override {
    std::string normalized, prefixed;
    if (spec_.nfc) {
      normalized = unicode::nfc(text);
      text = normalized;
    }
    if (spec_.add_space_prefix && (text.empty() || text[0] != ' ')) {
      prefixed.reserve(text.size() + 1);
      prefixed += ' ';
      prefixed += text;
      text = prefixed;
    }
    for (std::string_view piece : pre_tokenize(spec_.pre, text)) encode_piece(piece, out);
  }

  void append_normal_piece(int32_t id, std::string& out) const override {
    const std::string& text = spec_.tokens[id];
    size_t i = 0;
    while (i < text.size()) {
      uint32_t cp = 0;
      const size_t len = unicode::decode_one(std::string_view(text).substr(i), cp);
      const int b = len > 0 ? unicode::byte_of_codepoint(cp) : -1;
      if (b >= 0) {
        out += static_cast<char>(b);
        i += len;
      } else {
        // Outside the byte alphabet (a hand-edited vocabulary): keep the text as it is.
        out.append(text, i, len > 0 ? len : 1);
        i += len > 0 ? len : 1;
      }
    }
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    if (spec_.ignore_merges) {
      std::string mapped;
      for (char c : piece) mapped += byte_text_[static_cast<uint8_t>(c)];
      if (const int32_t id = find_normal(mapped); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    // One symbol per byte in a doubly linked list; merged-away symbols get id -2.
    struct Sym {
      int32_t id;
      int32_t prev, next;
    };
    const auto n = static_cast<int32_t>(piece.size());
    std::vector<Sym> sym(piece.size());
    for (int32_t i = 0; i < n; ++i) sym[i] = {byte_id_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};

    struct Candidate {
      int32_t rank, left, left_id, right_id;
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    auto consider = [&](int32_t left) {
      if (left < 0) return;
      const int32_t right = sym[left].next;
      if (right < 0 || sym[left].id < 0 || sym[right].id < 0) return;
      auto it = ranks_.find(key(sym[left].id, sym[right].id));
      if (it != ranks_.end()) queue.push({it->second.rank, left, sym[left].id, sym[right].id});
    };
    for (int32_t i = 0; i + 1 < n; ++i) consider(i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      const int32_t right = sym[c.left].next;
      // Stale: one side has been merged into something else since this pair was queued.
      if (sym[c.left].id != c.left_id || right < 0 || sym[right].id != c.right_id) continue;
      sym[c.left].id = ranks_.at(key(c.left_id, c.right_id)).result;
      sym[c.left].next = sym[right].next;
      if (sym[right].next >= 0) sym[sym[right].next].prev = c.left;
      sym[right].id = -2;
      consider(sym[c.left].prev);
      consider(c.left);
    }
    for (int32_t i = 0; i >= 0 && i < n; i = sym[i].next) {
      if (sym[i].id >= 0)
        out.push_back(sym[i].id);
      else if (spec_.unk >= 0)
        out.push_back(spec_.unk);  // a byte the vocabulary lacks
    }
  }

  std::array<std::string, 256> byte_text_;
  std::array<int32_t, 256> byte_id_{};
  std::unordered_map<uint64_t, Merge> ranks_;
};

}  // namespace

namespace detail {
Result<std::unique_ptr<Tokenizer>> make_byte_level_bpe(TokenizerSpec spec) {
  auto tok = std::make_unique<ByteLevelBpe>(std::move(spec));
  MLXN_TRY(tok->build());
  return std::unique_ptr<Tokenizer>(std::move(tok));
}
}  // namespace detail

}  // namespace mlxn::tok
