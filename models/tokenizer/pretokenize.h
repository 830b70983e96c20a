// The regex pre-tokenizers of byte-level BPE vocabularies, written by hand over Unicode categories. Each splits a
// text into pieces that cover it exactly, as leftmost-first alternation (Oniguruma / PCRE semantics, which Hugging
// Face tokenizers uses) would with these patterns:
//   Gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
//           \s+(?!\S)|\s+
//   Qwen2:  as Llama3 with \p{N} (one digit per piece) in place of \p{N}{1,3}.
// A byte that is not valid UTF-8 counts as one character outside L, N and \s.
#pragma once

#include <string_view>
#include <vector>

namespace mlxn::tok {

enum class PreTokenizer { Gpt2, Llama3, Qwen2 };

const char* pre_tokenizer_name(PreTokenizer p);
// The pieces of `text`, in order; their concatenation is `text`.
std::vector<std::string_view> pre_tokenize(PreTokenizer kind, std::string_view text);

}  // namespace mlxn::tok
