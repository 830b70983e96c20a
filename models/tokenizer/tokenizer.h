// Tokenizers for the supported model families, with no dependency beyond the public mlxn headers:
//   - byte-level BPE (GGUF tokenizer.ggml.model = "gpt2"; Hugging Face tokenizer.json model.type = "BPE" with a
//     ByteLevel pre-tokenizer): GPT-2's byte <-> code point alphabet, merges applied lowest rank first (leftmost
//     first among equal ranks), the Llama 3 / Qwen2 / GPT-2 pre-tokenizer regexes written out by hand;
//   - SentencePiece-style (GGUF "llama", used by Gemma 3): pieces merged highest score first, '▁' for spaces,
//     <0xXX> byte fallback, an optional space prefix.
// Special tokens (control and user-defined) are split out of the text before pre-tokenization, leftmost-longest,
// as Hugging Face does for added tokens. Behaviour follows Hugging Face tokenizers and llama.cpp; where the two
// differ the choice is written next to the code.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mlxn/core/status.h"
#include "tokenizer/pretokenize.h"

namespace mlxn::io {
class GgufFile;
}

namespace mlxn::tok {

// GGUF's tokenizer.ggml.token_type values.
enum class TokenType : uint8_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

enum class TokenizerKind { ByteLevelBpe, SentencePiece };

// The chat template families built in (no Jinja).
enum class ChatFormat { None, Llama3, ChatML, Gemma };
const char* chat_format_name(ChatFormat f);

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// Everything a tokenizer is built from; the GGUF and tokenizer.json loaders fill one, tests can too.
struct TokenizerSpec {
  TokenizerKind kind = TokenizerKind::ByteLevelBpe;
  PreTokenizer pre = PreTokenizer::Gpt2;  // byte-level BPE only
  // Token texts by id. Byte-level BPE: normal tokens in the byte-level alphabet, control and user-defined tokens
  // as raw text. SentencePiece: '▁' for spaces, byte tokens spelled <0xXX>.
  std::vector<std::string> tokens;
  std::vector<float> scores;     // SentencePiece merge priorities (higher merges first); one per token
  std::vector<TokenType> types;  // one per token; empty: every token Normal
  std::vector<std::pair<std::string, std::string>> merges;  // byte-level BPE, rank order
  bool ignore_merges = false;     // BPE: a pre-token that is itself a token is emitted whole (Llama 3)
  bool add_space_prefix = false;  // SentencePiece add_space_prefix; BPE ByteLevel(add_prefix_space)
  bool nfc = false;               // BPE: text is put in Unicode NFC first (tokenizer.json's NFC normalizer, Qwen)
  int32_t bos = -1, eos = -1, eot = -1, pad = -1, unk = -1;
  bool add_bos = false;
  bool add_eos = false;
  std::vector<int32_t> end_of_generation;  // further ids that end generation (eos and eot always do)
  // Added tokens whose match also swallows the whitespace before (lstrip) or after (rstrip) it.
  std::vector<int32_t> lstrip, rstrip;
  ChatFormat chat = ChatFormat::None;
  std::string chat_default_system;  // ChatML: the system turn the template adds when the messages have none
};

class Tokenizer {
 public:
  virtual ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Validates `spec` (sizes, ids in range, merges naming known tokens) and builds the tokenizer.
  static Result<std::unique_ptr<Tokenizer>> create(TokenizerSpec spec);
  // From GGUF metadata (tokenizer.ggml.*, general.architecture, tokenizer.chat_template).
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const io::GgufFile& file);
  // From the text of a Hugging Face tokenizer.json; `config_json` (tokenizer_config.json) and
  // `generation_config_json` may be empty. `model_type` (config.json) helps choose the chat format.
  static Result<std::unique_ptr<Tokenizer>> from_tokenizer_json(std::string_view tokenizer_json,
                                                                std::string_view config_json = {},
                                                                std::string_view generation_config_json = {},
                                                                std::string_view model_type = {});
  // From a Hugging Face model folder: tokenizer.json plus tokenizer_config.json, generation_config.json and
  // config.json where present.
  static Result<std::unique_ptr<Tokenizer>> from_hf_dir(const std::string& dir);

  // Token ids of `text`. add_special: prepend BOS / append EOS as the vocabulary asks (never a second BOS when the
  // text already starts with one). parse_special: control tokens written in the text become their ids; otherwise
  // they are tokenized as plain text (user-defined tokens are always matched, as in llama.cpp).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = true) const;
  // The text of `ids`. render_special: control tokens appear as their text (Hugging Face's default); otherwise
  // they are dropped. SentencePiece vocabularies with a space prefix drop the first text token's leading space.
  // Ids outside the vocabulary contribute nothing.
  std::string decode(std::span<const int32_t> ids, bool render_special = true) const;
  // The bytes one token contributes to decoded text (control tokens as their text), which may be part of a UTF-8
  // character.
  std::string token_to_piece(int32_t id) const;

  int32_t n_vocab() const { return static_cast<int32_t>(spec_.tokens.size()); }
  const std::string& token_text(int32_t id) const;               // the vocabulary's spelling; "" out of range
  std::optional<int32_t> token_id(std::string_view text) const;  // by exact vocabulary spelling
  TokenType token_type(int32_t id) const;
  bool is_special(int32_t id) const;  // control, unknown and unused tokens
  bool is_end_of_generation(int32_t id) const;

  TokenizerKind kind() const { return spec_.kind; }
  int32_t bos() const { return spec_.bos; }
  int32_t eos() const { return spec_.eos; }
  int32_t eot() const { return spec_.eot; }
  int32_t pad() const { return spec_.pad; }
  int32_t unk() const { return spec_.unk; }
  bool add_bos() const { return spec_.add_bos; }
  bool add_eos() const { return spec_.add_eos; }

  ChatFormat chat_format() const { return spec_.chat; }
  // The prompt text for `messages` in this vocabulary's chat format, starting with the BOS text where the family's
  // template does (Llama 3, Gemma): encode it with parse_special (add_special is harmless: BOS is not doubled).
  // add_generation_prompt: end with the header of an assistant turn. Unsupported when the format is None.
  Result<std::string> apply_chat_template(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

 protected:
  explicit Tokenizer(TokenizerSpec spec);
  // Tokenizes one stretch of text that holds no special token. `after_special`: it starts the input or follows a
  // special token (where SentencePiece adds its space prefix).
  virtual void encode_text(std::string_view text, bool after_special, std::vector<int32_t>& out) const = 0;
  // The bytes of a Normal token.
  virtual void append_normal_piece(int32_t id, std::string& out) const = 0;

  Status build_common();
  // The Normal token spelled `text`, or -1.
  int32_t find_normal(std::string_view text) const;

  TokenizerSpec spec_;

 private:
  friend class StreamDecoder;
  struct Special {
    std::string_view text;
    int32_t id;
    bool control;
  };
  // The text contributed by `id` when decoding; `first` is cleared by the first text token and tells whether to
  // drop the SentencePiece space prefix.
  void append_decoded(int32_t id, bool render_special, bool& first, std::string& out) const;

  std::unordered_map<std::string_view, int32_t> by_text_;  // every token, normal ones first
  std::unordered_map<std::string_view, int32_t> normal_;   // Normal tokens only
  std::vector<std::vector<Special>> specials_by_byte_;     // by first byte, longest first
  std::vector<uint8_t> lstrip_, rstrip_, eog_;
};

// Incremental decoding for streaming output: push() returns only whole UTF-8 characters, holding back the bytes of a
// character that the next token may complete; bytes that can never become a character are passed through as soon
// as that is certain. The concatenation of every push() and finish() equals decode() of the same ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = true);
  std::string push(int32_t id);
  std::string finish();  // the held-back bytes of an unfinished character, if any; then starts over

 private:
  const Tokenizer& tok_;
  bool render_special_;
  bool first_ = true;
  std::string pending_;
};

// Hugging Face chat-template heuristics shared by the loaders: the format a Jinja template text (or, failing that,
// the vocabulary and architecture) implies.
ChatFormat detect_chat_format(std::string_view template_text, std::string_view architecture,
                              const std::vector<std::string>& tokens);

}  // namespace mlxn::tok
