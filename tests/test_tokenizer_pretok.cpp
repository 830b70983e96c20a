// The tokenizers' Unicode layer and hand-written pre-tokenizer regexes (models/tokenizer): hand-derived splits of
// tricky inputs, and on random ASCII text agreement with std::regex running the same patterns (ECMAScript regexes
// are leftmost-first like Oniguruma; on ASCII \p{L} and \p{N} are [A-Za-z] and [0-9]).
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "test_util.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"

namespace mlxn::tok {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(PreTokenizer p, const std::string& s) {
  Pieces out;
  for (std::string_view v : pre_tokenize(p, s)) out.emplace_back(v);
  return out;
}

TEST(TokenizerUnicode, Categories) {
  EXPECT_TRUE(unicode::is_letter('a'));
  EXPECT_TRUE(unicode::is_letter(0xE9));      // é
  EXPECT_TRUE(unicode::is_letter(0x4E2D));    // 中
  EXPECT_TRUE(unicode::is_letter(0x3042));    // あ (Lo)
  EXPECT_TRUE(unicode::is_letter(0x02B0));    // ʰ (Lm)
  EXPECT_TRUE(unicode::is_letter(0x01C5));    // ǅ (Lt)
  EXPECT_FALSE(unicode::is_letter(0x0301));   // combining acute (Mn)
  EXPECT_FALSE(unicode::is_letter(0x1F600));  // 😀 (So)
  EXPECT_FALSE(unicode::is_letter('_'));
  EXPECT_FALSE(unicode::is_letter(unicode::kInvalid));
  EXPECT_TRUE(unicode::is_number('7'));
  EXPECT_TRUE(unicode::is_number(0x0663));  // Arabic-Indic three (Nd)
  EXPECT_TRUE(unicode::is_number(0x00BD));  // ½ (No)
  EXPECT_TRUE(unicode::is_number(0x2163));  // Ⅳ (Nl)
  EXPECT_FALSE(unicode::is_number('a'));
  EXPECT_TRUE(unicode::is_whitespace(0x3000));
  EXPECT_TRUE(unicode::is_whitespace(0x85));
  EXPECT_TRUE(unicode::is_whitespace(0x200A));
  EXPECT_FALSE(unicode::is_whitespace(0x200B));  // zero width space is not White_Space
  EXPECT_FALSE(unicode::is_whitespace(0x1C));
}

TEST(TokenizerUnicode, DecodeKeepsInvalidBytes) {
  // "a", a truncated 3-byte lead, "é", an overlong '/', a surrogate, a stray continuation byte.
  const std::string s =
      "a\xE4\xB8"
      "\xC3\xA9"
      "\xC0\xAF"
      "\xED\xA0\x80"
      "\x80";
  const auto c = unicode::decode(s);
  std::vector<uint32_t> cps;
  for (const auto& ch : c) cps.push_back(ch.cp);
  const uint32_t X = unicode::kInvalid;
  EXPECT_EQ(cps, (std::vector<uint32_t>{'a', X, X, 0xE9, X, X, X, X, X, X}));
  size_t total = 0;
  for (const auto& ch : c) total += ch.size;
  EXPECT_EQ(total, s.size());
}

// Expected forms worked out from the Unicode data: composition, singletons, Hangul, canonical ordering, exclusions.
TEST(TokenizerUnicode, Nfc) {
  EXPECT_EQ(unicode::nfc("abc"), "abc");
  EXPECT_EQ(unicode::nfc("e\u0301"), "\u00E9");
  EXPECT_EQ(unicode::nfc("\u00E9"), "\u00E9");
  EXPECT_EQ(unicode::nfc("A\u030A"), "\u00C5");
  EXPECT_EQ(unicode::nfc("\u212B"), "\u00C5");  // ANGSTROM SIGN is a singleton: never comes back
  EXPECT_EQ(unicode::nfc("\u1100\u1161"), "\uAC00");
  EXPECT_EQ(unicode::nfc("\u1100\u1161\u11A8"), "\uAC01");
  EXPECT_EQ(unicode::nfc("q\u0307\u0323"), "q\u0323\u0307");  // dot below (220) sorts before dot above (230)
  EXPECT_EQ(unicode::nfc("a\u0302\u0323"), "\u1EAD");         // reorder, then a+dot below, then +circumflex
  EXPECT_EQ(unicode::nfc("\u0958"), "\u0915\u093C");          // a composition exclusion stays decomposed
  EXPECT_EQ(unicode::nfc("e\xFF\u0301"), "e\xFF\u0301");      // a stray byte blocks composition
  EXPECT_EQ(unicode::combining_class(0x301), 230u);
  EXPECT_EQ(unicode::combining_class('a'), 0u);
}

// GPT-2's alphabet written out from its definition: printable bytes as themselves, the rest from U+0100 in order.
TEST(TokenizerUnicode, ByteAlphabet) {
  const auto& m = unicode::byte_to_codepoint();
  uint32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t want = keep ? static_cast<uint32_t>(b) : next++;
    EXPECT_EQ(m[b], want) << b;
    EXPECT_EQ(unicode::byte_of_codepoint(want), b);
  }
  EXPECT_EQ(m[' '], 0x120u);   // Ġ
  EXPECT_EQ(m['\n'], 0x10Au);  // Ċ
  EXPECT_EQ(m[0xAD], 0x143u);  // Ń
  EXPECT_EQ(unicode::byte_of_codepoint(0x20), -1);
  EXPECT_EQ(unicode::byte_of_codepoint(0x144), -1);
}

TEST(TokenizerPreTokenize, Llama3TrickyInputs) {
  const auto L = PreTokenizer::Llama3;
  EXPECT_EQ(split(L, "I'm"), (Pieces{"I", "'m"}));
  EXPECT_EQ(split(L, "I'M fine"), (Pieces{"I", "'M", " fine"}));
  EXPECT_EQ(split(L, "don't"), (Pieces{"don", "'t"}));
  EXPECT_EQ(split(L, "'ll've"), (Pieces{"'ll", "'ve"}));
  EXPECT_EQ(split(L, "'hello"), (Pieces{"'hello"}));
  EXPECT_EQ(split(L, "'\xC5\xBFx"), (Pieces{"'\xC5\xBF", "x"}));  // ſ folds to s under (?i)
  EXPECT_EQ(split(L, "  hello"), (Pieces{" ", " hello"}));
  EXPECT_EQ(split(L, "hello  world"), (Pieces{"hello", " ", " world"}));
  EXPECT_EQ(split(L, "123456"), (Pieces{"123", "456"}));
  EXPECT_EQ(split(L, "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(split(L, "3.14"), (Pieces{"3", ".", "14"}));
  EXPECT_EQ(split(L, "\n\n"), (Pieces{"\n\n"}));
  EXPECT_EQ(split(L, "\r\n"), (Pieces{"\r\n"}));
  EXPECT_EQ(split(L, "x \n\n y"), (Pieces{"x", " \n\n", " y"}));
  EXPECT_EQ(split(L, "Hello!!\n\nWorld"), (Pieces{"Hello", "!!\n\n", "World"}));
  EXPECT_EQ(split(L, "a\tb"), (Pieces{"a", "\tb"}));
  EXPECT_EQ(split(L, "a\t\tb"), (Pieces{"a", "\t", "\tb"}));
  EXPECT_EQ(split(L, "a ,b"), (Pieces{"a", " ,", "b"}));
  EXPECT_EQ(split(L, "hi  "), (Pieces{"hi", "  "}));
  EXPECT_EQ(split(L, "你好 世界"), (Pieces{"你好", " 世界"}));
  EXPECT_EQ(split(L, "😀😀 hi"), (Pieces{"😀😀", " hi"}));
  EXPECT_EQ(split(L, "cafe\xCC\x81s"), (Pieces{"cafe", "\xCC\x81s"}));  // combining mark leads the next letters
  EXPECT_EQ(split(L,
                  "a\xFF"
                  "b"),
            (Pieces{"a",
                    "\xFF"
                    "b"}));  // an invalid byte is "other"
  EXPECT_EQ(split(L, ""), Pieces{});
}

TEST(TokenizerPreTokenize, Qwen2SplitsEveryDigit) {
  const auto Q = PreTokenizer::Qwen2;
  EXPECT_EQ(split(Q, "123456"), (Pieces{"1", "2", "3", "4", "5", "6"}));
  EXPECT_EQ(split(Q, "abc123"), (Pieces{"abc", "1", "2", "3"}));
  EXPECT_EQ(split(Q, "I'm  ok\n\n"), (Pieces{"I", "'m", " ", " ok", "\n\n"}));
}

TEST(TokenizerPreTokenize, Gpt2) {
  const auto G = PreTokenizer::Gpt2;
  EXPECT_EQ(split(G, "I'm"), (Pieces{"I", "'m"}));
  EXPECT_EQ(split(G, "I'M"), (Pieces{"I", "'", "M"}));  // case-sensitive contractions
  EXPECT_EQ(split(G, "  hello"), (Pieces{" ", " hello"}));
  EXPECT_EQ(split(G, "123456 789"), (Pieces{"123456", " 789"}));
  EXPECT_EQ(split(G, "hello\tworld"), (Pieces{"hello", "\t", "world"}));
  EXPECT_EQ(split(G, "a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
}

// Pieces always tile the input, whatever it holds.
TEST(TokenizerPreTokenize, PiecesCoverRandomBytes) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  for (int iter = 0; iter < 300; ++iter) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    for (auto p : {PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2}) {
      std::string joined;
      for (std::string_view v : pre_tokenize(p, s)) {
        ASSERT_FALSE(v.empty());
        joined += v;
      }
      ASSERT_EQ(joined, s);
    }
  }
}

Pieces split_with_regex(const std::regex& re, const std::string& s) {
  Pieces out;
  size_t p = 0;
  while (p < s.size()) {
    std::smatch m;
    auto flags = std::regex_constants::match_continuous;
    if (p > 0) flags |= std::regex_constants::match_prev_avail;
    if (!std::regex_search(s.begin() + static_cast<std::ptrdiff_t>(p), s.end(), m, re, flags) || m.length(0) == 0) {
      out.push_back("<no match>");
      return out;
    }
    out.push_back(m.str(0));
    p += static_cast<size_t>(m.length(0));
  }
  return out;
}

TEST(TokenizerPreTokenize, AgreesWithStdRegexOnAscii) {
  const std::string contractions_i = R"('(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))";
  const std::string tail = R"(| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::regex llama3(contractions_i + R"(|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3})" + tail);
  const std::regex qwen2(contractions_i + R"(|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9])" + tail);
  const std::regex gpt2(R"('s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+)");
  // The oracle itself, on a case worked out by hand.
  ASSERT_EQ(split_with_regex(llama3, "  hello"), (Pieces{" ", " hello"}));

  const std::string alphabet = "abSTMDLVEREsmtdlv019 \t\n\r'!.,_-";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  for (int iter = 0; iter < 1500; ++iter) {
    std::string s(1 + rng() % 24, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    SCOPED_TRACE(testing::PrintToString(s));
    ASSERT_EQ(split(PreTokenizer::Llama3, s), split_with_regex(llama3, s));
    ASSERT_EQ(split(PreTokenizer::Qwen2, s), split_with_regex(qwen2, s));
    ASSERT_EQ(split(PreTokenizer::Gpt2, s), split_with_regex(gpt2, s));
  }
}

}  // namespace
}  // namespace mlxn::tok
