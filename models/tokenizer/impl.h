// Internal to mlxn_tokenizer: the two implementations' factories and helpers the loaders share.
#pragma once

#include <memory>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace mlxn::tok::detail {

inline constexpr std::string_view kOp = "tokenizer";

Result<std::unique_ptr<Tokenizer>> make_byte_level_bpe(TokenizerSpec spec);
Result<std::unique_ptr<Tokenizer>> make_sentencepiece(TokenizerSpec spec);

// 0..255 for a token spelled exactly <0xXX> (upper or lower case hex digits), else -1.
int parse_byte_token(std::string_view text);

// Where the vocabulary leaves them unset: eot from the families' end-of-turn tokens, and the end-of-generation set
// from the usual end markers present as control tokens (what llama.cpp does too, since few files list them).
void fill_end_of_turn(TokenizerSpec& spec);

// The pre-tokenizer a Hugging Face Split regex stands for, by exact pattern text; false when it is none we know.
bool pre_tokenizer_from_regex(std::string_view pattern, PreTokenizer& out);

// Qwen's templates open with a default system turn when the messages have none; which one depends on the version.
std::string default_system_prompt(std::string_view template_text);

}  // namespace mlxn::tok::detail
