#include "tokenizer/pretokenize.h"

#include <cstddef>

#include "tokenizer/unicode.h"

namespace mlxn::tok {

const char* pre_tokenizer_name(PreTokenizer p) {
  switch (p) {
    case PreTokenizer::Gpt2:
      return "gpt2";
    case PreTokenizer::Llama3:
      return "llama3";
    case PreTokenizer::Qwen2:
      return "qwen2";
  }
  return "?";
}

namespace {

using unicode::Char;

// One matcher per alternative: the number of characters it matches at `p`, 0 for no match.
struct Matcher {
  const std::vector<Char>& c;
  size_t n;

  uint32_t at(size_t i) const { return i < n ? c[i].cp : unicode::kInvalid; }
  bool letter(size_t i) const { return i < n && unicode::is_letter(c[i].cp); }
  bool number(size_t i) const { return i < n && unicode::is_number(c[i].cp); }
  bool space(size_t i) const { return i < n && unicode::is_whitespace(c[i].cp); }
  bool crlf(size_t i) const { return i < n && (c[i].cp == '\r' || c[i].cp == '\n'); }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const { return i < n && !space(i) && !letter(i) && !number(i); }

  // 's|'t|'re|'ve|'m|'ll|'d, with ASCII case folding (plus U+017F LONG S, which folds to 's') when `fold`.
  size_t contraction(size_t p, bool fold) const {
    if (at(p) != '\'') return 0;
    auto lower = [&](size_t i) -> uint32_t {
      const uint32_t v = at(i);
      if (!fold) return v;
      if (v >= 'A' && v <= 'Z') return v + 32;
      return v == 0x17F ? 's' : v;
    };
    const uint32_t a = lower(p + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    const uint32_t b = lower(p + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }
  size_t run_letters(size_t i) const {
    size_t k = i;
    while (letter(k)) ++k;
    return k - i;
  }
  size_t run_numbers(size_t i) const {
    size_t k = i;
    while (number(k)) ++k;
    return k - i;
  }
  size_t run_other(size_t i) const {
    size_t k = i;
    while (other(k)) ++k;
    return k - i;
  }
  size_t run_space(size_t i) const {
    size_t k = i;
    while (space(k)) ++k;
    return k - i;
  }
  // ` ?X+` for a class X given by its run function.
  template <typename Run>
  size_t optional_space_then(size_t p, Run run) const {
    if (at(p) == ' ') {
      const size_t r = run(p + 1);
      if (r > 0) return 1 + r;
    }
    return run(p);
  }
  // \s+(?!\S)|\s+ : a whitespace run, less its last character when a non-space follows it (so that the last space
  // can lead the next word), unless the run is a single character.
  size_t trailing_space(size_t p) const {
    const size_t r = run_space(p);
    if (r == 0) return 0;
    if (p + r < n && r > 1) return r - 1;
    return r;
  }

  size_t gpt2(size_t p) const {
    if (size_t m = contraction(p, false)) return m;
    if (size_t m = optional_space_then(p, [&](size_t i) { return run_letters(i); })) return m;
    if (size_t m = optional_space_then(p, [&](size_t i) { return run_numbers(i); })) return m;
    if (size_t m = optional_space_then(p, [&](size_t i) { return run_other(i); })) return m;
    return trailing_space(p);
  }

  size_t llama3_family(size_t p, size_t max_digits) const {
    if (size_t m = contraction(p, true)) return m;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (letter(p)) return run_letters(p);
    if (p < n && !crlf(p) && !number(p) && letter(p + 1)) return 1 + run_letters(p + 1);
    // \p{N}{1,3} or \p{N}
    if (number(p)) {
      size_t k = 0;
      while (k < max_digits && number(p + k)) ++k;
      return k;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    size_t m = 0;
    if (at(p) == ' ' && other(p + 1))
      m = 1 + run_other(p + 1);
    else if (other(p))
      m = run_other(p);
    if (m > 0) {
      while (crlf(p + m)) ++m;
      return m;
    }
    // \s*[\r\n]+ : the whitespace run up to and including its last CR or LF (backtracking gives back the rest).
    const size_t r = run_space(p);
    for (size_t k = r; k > 0; --k)
      if (crlf(p + k - 1)) return k;
    return trailing_space(p);
  }
};

}  // namespace

std::vector<std::string_view> pre_tokenize(PreTokenizer kind, std::string_view text) {
  const std::vector<Char> chars = unicode::decode(text);
  const Matcher m{chars, chars.size()};
  std::vector<std::string_view> out;
  size_t p = 0;
  while (p < chars.size()) {
    size_t len = 0;
    switch (kind) {
      case PreTokenizer::Gpt2:
        len = m.gpt2(p);
        break;
      case PreTokenizer::Llama3:
        len = m.llama3_family(p, 3);
        break;
      case PreTokenizer::Qwen2:
        len = m.llama3_family(p, 1);
        break;
    }
    if (len == 0) len = 1;  // unreachable: some alternative matches every character; never loop forever
    const size_t begin = chars[p].offset;
    const size_t end = p + len < chars.size() ? chars[p + len].offset : text.size();
    out.push_back(text.substr(begin, end - begin));
    p += len;
  }
  return out;
}

}  // namespace mlxn::tok
