// The Unicode facts the tokenizers need: strict UTF-8 decoding that keeps invalid bytes (they stay one "other"
// character each, so no input is ever lost), the general categories L and N from a generated range table,
// White_Space, and GPT-2's reversible byte <-> printable code point mapping used by byte-level BPE.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mlxn::tok::unicode {

struct CodepointRange {
  uint32_t first;
  uint32_t last;
  uint32_t flags;  // kLetter or kNumber
};
inline constexpr uint32_t kLetter = 1;
inline constexpr uint32_t kNumber = 2;
extern const CodepointRange kCategoryRanges[];
extern const size_t kCategoryRangeCount;
extern const char* const kUnicodeVersion;

// NFC data (generated): combining classes (CodepointRange::flags holds the class), full canonical decompositions,
// primary composites. Hangul syllables are computed, not listed.
struct Decomposition {
  uint32_t cp;
  uint32_t offset;  // into kDecompositionData
  uint32_t size;
};
struct Composition {
  uint32_t first;
  uint32_t second;
  uint32_t composite;
};
extern const CodepointRange kCombiningClasses[];
extern const size_t kCombiningClassesCount;
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionsCount;
extern const uint32_t kDecompositionData[];
extern const Composition kCompositions[];
extern const size_t kCompositionsCount;

// A code point value that no valid character has: what an invalid byte decodes to.
inline constexpr uint32_t kInvalid = 0xFFFFFFFFu;

// One character of a decoded string: its code point (kInvalid for a stray byte) and where its bytes are.
struct Char {
  uint32_t cp;
  uint32_t offset;
  uint32_t size;
};

// Length of the valid UTF-8 sequence at the start of `s` (1 to 4), or 0 when the first byte does not start one
// (stray continuation, overlong form, surrogate, past U+10FFFF, truncated). `cp` receives the code point.
size_t decode_one(std::string_view s, uint32_t& cp);
// Every character of `s`; an invalid byte becomes one Char{kInvalid, offset, 1}.
std::vector<Char> decode(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);

uint32_t category_flags(uint32_t cp);  // kLetter, kNumber or 0
inline bool is_letter(uint32_t cp) { return cp != kInvalid && (category_flags(cp) & kLetter) != 0; }
inline bool is_number(uint32_t cp) { return cp != kInvalid && (category_flags(cp) & kNumber) != 0; }
// The White_Space property, which is what \s means in the regex engines Hugging Face tokenizers use.
bool is_whitespace(uint32_t cp);

uint32_t combining_class(uint32_t cp);
// Unicode Normalization Form C (UAX #15: canonical decomposition, canonical ordering, canonical composition).
// Bytes that are not UTF-8 are kept as they are and block composition across them.
std::string nfc(std::string_view s);

// GPT-2's byte-level alphabet: the printable bytes map to themselves, the other 68 to U+0100 + n in byte order.
const std::array<uint32_t, 256>& byte_to_codepoint();
// The inverse; -1 for a code point that is not in the alphabet.
int byte_of_codepoint(uint32_t cp);

// How long a complete UTF-8 sequence starting with lead byte `b` is (1 to 4), or 0 for a byte that cannot lead.
size_t sequence_length(uint8_t b);

}  // namespace mlxn::tok::unicode
