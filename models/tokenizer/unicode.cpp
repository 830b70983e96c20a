#include "tokenizer/unicode.h"

#include <algorithm>
#include <iterator>

namespace mlxn::tok::unicode {

size_t sequence_length(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;  // C0 and C1 only start overlong forms
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;  // F5..FF would pass U+10FFFF
  return 0;
}

size_t decode_one(std::string_view s, uint32_t& cp) {
  if (s.empty()) return 0;
  const auto b0 = static_cast<uint8_t>(s[0]);
  const size_t n = sequence_length(b0);
  if (n == 0 || n > s.size()) return 0;
  if (n == 1) {
    cp = b0;
    return 1;
  }
  uint32_t v = b0 & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3F);
  }
  // Overlong three- and four-byte forms, surrogates and values past the last plane are not characters.
  if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  cp = v;
  return n;
}

std::vector<Char> decode(std::string_view s) {
  std::vector<Char> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    const size_t n = decode_one(s.substr(i), cp);
    if (n == 0) {
      out.push_back({kInvalid, static_cast<uint32_t>(i), 1});
      i += 1;
    } else {
      out.push_back({cp, static_cast<uint32_t>(i), static_cast<uint32_t>(n)});
      i += n;
    }
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t category_flags(uint32_t cp) {
  if (cp < 0x80) {  // the common case without a search
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return kLetter;
    if (cp >= '0' && cp <= '9') return kNumber;
    return 0;
  }
  const CodepointRange* end = kCategoryRanges + kCategoryRangeCount;
  const CodepointRange* it =
      std::upper_bound(kCategoryRanges, end, cp, [](uint32_t v, const CodepointRange& r) { return v < r.first; });
  if (it == kCategoryRanges) return 0;
  --it;
  return cp <= it->last ? it->flags : 0;
}

bool is_whitespace(uint32_t cp) {
  static constexpr uint32_t kSingles[] = {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
  if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x2000 && cp <= 0x200A)) return true;
  return std::find(std::begin(kSingles), std::end(kSingles), cp) != std::end(kSingles);
}

uint32_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const CodepointRange* end = kCombiningClasses + kCombiningClassesCount;
  const CodepointRange* it =
      std::upper_bound(kCombiningClasses, end, cp, [](uint32_t v, const CodepointRange& r) { return v < r.first; });
  if (it == kCombiningClasses) return 0;
  --it;
  return cp <= it->last ? it->flags : 0;
}

namespace {

// Hangul syllables: S = SBase + (L * VCount + V) * TCount + T (Unicode chapter 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// A stray byte b travels as this pseudo code point: outside Unicode, so it neither decomposes nor composes.
constexpr uint32_t kStrayByte = 0x110000;

void decompose_into(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0 && cp < kStrayByte) {
    const Decomposition* end = kDecompositions + kDecompositionsCount;
    const Decomposition* it =
        std::lower_bound(kDecompositions, end, cp, [](const Decomposition& d, uint32_t v) { return d.cp < v; });
    if (it != end && it->cp == cp) {
      out.insert(out.end(), kDecompositionData + it->offset, kDecompositionData + it->offset + it->size);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of (a, b), or 0.
uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const Composition* end = kCompositions + kCompositionsCount;
  const Composition* it = std::lower_bound(kCompositions, end, std::pair{a, b}, [](const Composition& c, auto v) {
    return c.first != v.first ? c.first < v.first : c.second < v.second;
  });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

}  // namespace

std::string nfc(std::string_view s) {
  bool ascii = true;
  for (char c : s) ascii = ascii && static_cast<uint8_t>(c) < 0x80;
  if (ascii) return std::string(s);

  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (const Char& c : decode(s))
    decompose_into(c.cp == kInvalid ? kStrayByte + static_cast<uint8_t>(s[c.offset]) : c.cp, cps);
  // Canonical ordering: a stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [](uint32_t a, uint32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition: each character joins the last starter unless blocked by a character in between of
  // class 0 or of a class not below its own.
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  size_t starter = 0;
  bool have_starter = false;
  uint32_t last_class = 0;
  for (uint32_t cp : cps) {
    const uint32_t cc = combining_class(cp);
    if (have_starter && (last_class < cc || last_class == 0)) {
      if (const uint32_t c = compose_pair(out[starter], cp); c != 0) {
        out[starter] = c;
        continue;
      }
    }
    if (cc == 0) {
      starter = out.size();
      have_starter = true;
    }
    last_class = cc;
    out.push_back(cp);
  }
  std::string r;
  r.reserve(s.size());
  for (uint32_t cp : out) {
    if (cp >= kStrayByte)
      r += static_cast<char>(cp - kStrayByte);
    else
      append_utf8(r, cp);
  }
  return r;
}

namespace {
struct ByteTables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 0x144> from_cp{};  // every image lies below U+0144
  ByteTables() {
    from_cp.fill(-1);
    uint32_t next = 0x100;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? b : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}
}  // namespace

const std::array<uint32_t, 256>& byte_to_codepoint() { return byte_tables().to_cp; }

int byte_of_codepoint(uint32_t cp) { return cp < 0x144 ? byte_tables().from_cp[cp] : -1; }

}  // namespace mlxn::tok::unicode
