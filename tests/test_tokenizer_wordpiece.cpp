// WordPiece (models/tokenizer/wordpiece.*): each expectation below is worked out by hand from the definition of
// BertNormalizer, BertPreTokenizer and WordPiece (see wordpiece.h), not taken from the tokenizer's output.
#include <gtest/gtest.h>

#include <filesystem>

#include "mlxn/io/gguf.h"
#include "mlxn/io/gguf_writer.h"
#include "tokenizer/wordpiece.h"

namespace mlxn::tok {
namespace {

const std::vector<std::string> kVocab = {
    "[PAD]", "[UNK]", "[CLS]",  "[SEP]", "[MASK]",  // 0..4
    "un",    "##aff", "##able", "hello", "world",   // 5..9
    "!",     "'",     "t",      "don",   ".",       // 10..14
    "a",     "##a",   "中",     "文",    "abc",     // 15..19
    "cafe",  "$",     "5",      "+",     "3",       // 20..24
    "que",   "¿",     "?",      "i",     "[",       // 25..29
    "mask",  "]",     "unaff",  "—",     "x",       // 30..34
};

std::unique_ptr<WordPieceTokenizer> make(WordPieceSpec spec = {}) {
  spec.vocab = kVocab;
  spec.added = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  auto t = WordPieceTokenizer::create(std::move(spec));
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return t.is_ok() ? std::move(t).value() : nullptr;
}

TEST(WordPieceNormalizer, CleanTextAccentsLowercaseChinese) {
  auto t = make();
  ASSERT_TRUE(t);
  // \t -> ' '; é = e + U+0301 after NFD, the mark (Mn) dropped; then lower case.
  EXPECT_EQ(t->normalize("H\xC3\xA9llo WORLD\t!"), "hello world !");
  // U+0001 (Cc) and U+200B (Cf) are dropped, U+00A0 (White_Space) becomes a space, \n too.
  EXPECT_EQ(t->normalize("a\x01"
                         "b\xE2\x80\x8B"
                         "c\xC2\xA0"
                         "d\ne"),
            "abc d e");
  // U+0000 and U+FFFD are dropped; invalid UTF-8 too.
  EXPECT_EQ(t->normalize(std::string("x\0y", 3) + "\xEF\xBF\xBD" + "z\xFF"), "xyz");
  // CJK ideographs get a space on each side; Hiragana does not.
  EXPECT_EQ(t->normalize("\xE4\xB8\xAD\xE6\x96\x87"
                         "abc"),
            " \xE4\xB8\xAD  \xE6\x96\x87 abc");
  EXPECT_EQ(t->normalize("\xE3\x81\x82"), "\xE3\x81\x82");
  // Accents are stripped before lower-casing: U+0130 (I with dot) -> NFD I + U+0307 -> I -> i.
  EXPECT_EQ(t->normalize("\xC4\xB0"), "i");
  // Lower case maps each character on its own: final capital sigma becomes σ (U+03C3), not ς.
  EXPECT_EQ(t->normalize("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"), "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83");
  // Hangul syllables decompose into conjoining jamo under NFD (none is Mn, so they stay): 한 -> ᄒ ᅡ ᆫ.
  EXPECT_EQ(t->normalize("\xED\x95\x9C"), "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB");
}

TEST(WordPieceNormalizer, OptionsOff) {
  WordPieceSpec s;
  s.normalizer.strip_accents = false;
  auto t = make(s);
  ASSERT_TRUE(t);
  // Lower case without stripping: U+0130 lower-cases to i + U+0307 (its full mapping), é stays.
  EXPECT_EQ(t->normalize("\xC4\xB0"), "i\xCC\x87");
  EXPECT_EQ(t->normalize("\xC3\x89"), "\xC3\xA9");
  WordPieceSpec cased;
  cased.normalizer = {true, false, std::nullopt, false};  // no lower case, so no accent stripping either
  auto c = make(cased);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->normalize("Caf\xC3\xA9 \xE4\xB8\xAD"), "Caf\xC3\xA9 \xE4\xB8\xAD");
}

TEST(WordPiecePreTokenizer, WhitespaceAndPunctuation) {
  auto t = make();
  ASSERT_TRUE(t);
  using V = std::vector<std::string>;
  EXPECT_EQ(t->pre_tokenize("don't stop."), (V{"don", "'", "t", "stop", "."}));
  // ASCII symbols count as punctuation ($ + are category S), as do ¿ (Po) and — (Pd).
  EXPECT_EQ(t->pre_tokenize("$5+3"), (V{"$", "5", "+", "3"}));
  EXPECT_EQ(t->pre_tokenize("\xC2\xBFque?"), (V{"\xC2\xBF", "que", "?"}));
  EXPECT_EQ(t->pre_tokenize("a\xE2\x80\x94"
                            "b"),
            (V{"a", "\xE2\x80\x94", "b"}));
  EXPECT_EQ(t->pre_tokenize("  many   spaces  "), (V{"many", "spaces"}));
  EXPECT_EQ(t->pre_tokenize(""), V{});
  // Non-ASCII symbols (category S, e.g. €) are not split off.
  EXPECT_EQ(t->pre_tokenize("5\xE2\x82\xAC"), (V{"5\xE2\x82\xAC"}));
}

TEST(WordPieceModel, GreedyLongestMatchFirst) {
  auto t = make();
  ASSERT_TRUE(t);
  using V = std::vector<int32_t>;
  // "unaff" is in the vocabulary, so it wins over "un": unaff + ##able.
  EXPECT_EQ(t->word_pieces("unaffable"), (V{32, 7}));
  EXPECT_EQ(t->word_pieces("aaa"), (V{15, 16, 16}));
  // A position with no piece makes the whole word unknown (not a partial result).
  EXPECT_EQ(t->word_pieces("unaffxble"), (V{1}));
  EXPECT_EQ(t->word_pieces("zzz"), (V{1}));
  // Longer than max_input_chars_per_word (100 characters): unknown; exactly 100 is tokenized.
  EXPECT_EQ(t->word_pieces(std::string(101, 'a')), (V{1}));
  EXPECT_EQ(t->word_pieces(std::string(100, 'a')).size(), 100u);

  auto without_unaff = [] {
    WordPieceSpec s;
    s.vocab = kVocab;
    s.vocab[32] = "##zz";  // drop "unaff": now un + ##aff + ##able, the textbook example
    return WordPieceTokenizer::create(std::move(s));
  }();
  ASSERT_TRUE(without_unaff.is_ok());
  EXPECT_EQ((*without_unaff)->word_pieces("unaffable"), (V{5, 6, 7}));
}

TEST(WordPieceEncode, SpecialTokensAddedTokensAndTruncation) {
  auto t = make();
  ASSERT_TRUE(t);
  using V = std::vector<int32_t>;
  EXPECT_EQ(t->encode("Hello, World!", true), (V{2, 8, 1, 9, 10, 3}));  // "," is not in the vocabulary
  EXPECT_EQ(t->encode("Hello, World!", false), (V{8, 1, 9, 10}));
  // Added tokens match the raw text (case-sensitive, not normalized); "[mask]" is plain text.
  EXPECT_EQ(t->encode("hello [MASK] world", true), (V{2, 8, 4, 9, 3}));
  EXPECT_EQ(t->encode("hello[MASK]world", false), (V{8, 4, 9}));
  EXPECT_EQ(t->encode("[mask]", false), (V{29, 30, 31}));
  EXPECT_EQ(t->encode("\xE4\xB8\xAD\xE6\x96\x87"
                      "abc",
                      false),
            (V{17, 18, 19}));
  EXPECT_EQ(t->encode("Caf\xC3\xA9", false), (V{20}));
  EXPECT_EQ(t->encode("", true), (V{2, 3}));
  // Truncation keeps room for [CLS] and [SEP].
  EXPECT_EQ(t->encode("a a a a a a", true, 5), (V{2, 15, 15, 15, 3}));
  EXPECT_EQ(t->encode("a a a a a a", false, 5), (V{15, 15, 15, 15, 15}));
  EXPECT_EQ(t->encode("a a a a a a", true, -1).size(), 8u);
}

TEST(WordPieceLoad, TokenizerJsonAndVocabTxt) {
  const std::string js = R"({"added_tokens":[{"id":0,"content":"[PAD]"},{"id":1,"content":"[UNK]"},
    {"id":2,"content":"[CLS]"},{"id":3,"content":"[SEP]"}],
    "normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,
                  "lowercase":true},
    "pre_tokenizer":{"type":"BertPreTokenizer"}, "truncation":{"max_length":4},
    "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]","type_id":0}},
      {"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}}]},
    "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
             "max_input_chars_per_word":100,
             "vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"hi":4,"##s":5,"there":6}}})";
  auto t = WordPieceTokenizer::from_tokenizer_json(js);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ((*t)->max_length(), 4);
  EXPECT_EQ((*t)->encode("His there"), (std::vector<int32_t>{2, 4, 5, 3}));  // truncated to 4
  EXPECT_EQ((*t)->encode("His there", true, -1), (std::vector<int32_t>{2, 4, 5, 6, 3}));

  auto v = WordPieceTokenizer::from_vocab_txt("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhi\r\n##s\n");
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ((*v)->n_vocab(), 6);  // line numbers are ids; the final newline ends a line, it starts none
  EXPECT_EQ((*v)->encode("HIS"), (std::vector<int32_t>{2, 4, 5, 3}));

  // Errors: not WordPiece, missing [CLS], duplicate tokens, malformed fields.
  auto bpe = WordPieceTokenizer::from_tokenizer_json(R"({"model":{"type":"BPE","vocab":{}}})");
  ASSERT_FALSE(bpe.is_ok());
  EXPECT_EQ(bpe.status().code(), StatusCode::Unsupported);
  auto no_cls = WordPieceTokenizer::from_vocab_txt("[UNK]\n[SEP]\n");
  ASSERT_FALSE(no_cls.is_ok());
  EXPECT_NE(no_cls.status().message().find("[CLS]"), std::string::npos);
  auto dup = WordPieceTokenizer::from_vocab_txt("[UNK]\n[CLS]\n[SEP]\nx\nx\n");
  ASSERT_FALSE(dup.is_ok());
  EXPECT_NE(dup.status().message().find("twice"), std::string::npos);
  auto bad = WordPieceTokenizer::from_tokenizer_json(R"({"model":{"type":"WordPiece","unk_token":7,"vocab":{}}})");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::FormatError);
}

// llama.cpp's "bert" GGUF vocabulary ("▁" + word-initial pieces, "##" dropped from continuations) maps back.
TEST(WordPieceLoad, LlamaCppGguf) {
  io::GgufWriter w;
  w.set_string("general.architecture", "bert");
  w.set_string("tokenizer.ggml.model", "bert");
  std::vector<std::string> toks;
  for (const auto& t : kVocab) {
    if (t.size() >= 2 && t.front() == '[' && t.back() == ']')
      toks.push_back(t);
    else if (t.starts_with("##"))
      toks.push_back(t.substr(2));
    else
      toks.push_back("\xE2\x96\x81" + t);
  }
  w.set_array_string("tokenizer.ggml.tokens", toks);
  w.set_u32("tokenizer.ggml.unknown_token_id", 1);
  w.set_u32("tokenizer.ggml.cls_token_id", 2);
  w.set_u32("tokenizer.ggml.seperator_token_id", 3);
  w.set_u32("bert.context_length", 6);
  const auto path = std::filesystem::temp_directory_path() / "mlxn_wordpiece_test.gguf";
  ASSERT_TRUE(w.write(path.string()).is_ok());
  auto f = io::GgufFile::open(path.string());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  auto t = WordPieceTokenizer::from_gguf(*f);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ((*t)->token_text(6), "##aff");
  EXPECT_EQ((*t)->token_text(8), "hello");
  EXPECT_EQ((*t)->encode("Unaffable, hello [MASK]", true, -1), (std::vector<int32_t>{2, 32, 7, 1, 8, 4, 3}));
  EXPECT_EQ((*t)->encode("a a a a a a"), (std::vector<int32_t>{2, 15, 15, 15, 15, 3}));  // context_length 6
  std::filesystem::remove(path);
}

TEST(WordPieceTables, CharacterClasses) {
  EXPECT_TRUE(wordpiece::is_punctuation('!'));
  EXPECT_TRUE(wordpiece::is_punctuation('~'));
  EXPECT_TRUE(wordpiece::is_punctuation(0x3002));  // 。 ideographic full stop (Po)
  EXPECT_FALSE(wordpiece::is_punctuation('a'));
  EXPECT_FALSE(wordpiece::is_punctuation(0x20AC));  // € (Sc)
  EXPECT_TRUE(wordpiece::is_control(0x7F));
  EXPECT_TRUE(wordpiece::is_control(0xE000));  // private use (Co)
  EXPECT_FALSE(wordpiece::is_control('\n'));
  EXPECT_FALSE(wordpiece::is_control('a'));
  EXPECT_TRUE(wordpiece::is_mark_nonspacing(0x0301));
  EXPECT_FALSE(wordpiece::is_mark_nonspacing(0x0903));  // Devanagari visarga is Mc
  EXPECT_TRUE(wordpiece::is_chinese_char(0x4E2D));
  EXPECT_FALSE(wordpiece::is_chinese_char(0x3042));
  std::vector<uint32_t> out;
  wordpiece::append_lower(0x0130, out);
  EXPECT_EQ(out, (std::vector<uint32_t>{0x69, 0x307}));
  out.clear();
  wordpiece::append_nfd(0x00C5, out);  // Å -> A + ring above
  EXPECT_EQ(out, (std::vector<uint32_t>{0x41, 0x30A}));
}

}  // namespace
}  // namespace mlxn::tok
