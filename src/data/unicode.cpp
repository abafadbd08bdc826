// UTF-8 decoding/encoding and character-class lookup (binary search over generated ranges,
// with a table for ASCII because almost all text the tokenizers see is ASCII).
#include "data/unicode.h"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <vector>

namespace lnx::data {
namespace {

bool in_ranges(char32_t cp, const CodePointRange* ranges, size_t count) {
  const CodePointRange* end = ranges + count;
  // First range whose last >= cp; cp is inside when that range also starts at or before it.
  const CodePointRange* it =
      std::lower_bound(ranges, end, cp, [](const CodePointRange& r, char32_t value) { return r.last < value; });
  return it != end && it->first <= cp;
}

// Unicode White_Space (PropList.txt); it has not changed since Unicode 6.3.
bool is_white_space(char32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0) return true;
  if (cp < 0x1680) return false;
  return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

CharClass classify_slow(char32_t cp) {
  if (is_white_space(cp)) return CharClass::Whitespace;
  if (in_ranges(cp, unicode_tables::kLetterRanges, unicode_tables::kLetterRangesCount)) return CharClass::Letter;
  if (in_ranges(cp, unicode_tables::kNumberRanges, unicode_tables::kNumberRangesCount)) return CharClass::Number;
  return CharClass::Other;
}

const std::array<CharClass, 128>& ascii_classes() {
  static const std::array<CharClass, 128> table = [] {
    std::array<CharClass, 128> t{};
    for (char32_t c = 0; c < 128; ++c) t[c] = classify_slow(c);
    return t;
  }();
  return table;
}

}  // namespace

DecodedChar decode_utf8(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  const DecodedChar invalid{kReplacementChar, 1, false};
  if (lead < 0x80) return {lead, 1, true};
  size_t length;
  char32_t cp;
  char32_t minimum;  // smallest code point this length may encode (rejects overlong forms)
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, minimum = 0x10000;
  } else {
    return invalid;  // a continuation byte or 0xF8..0xFF cannot start a character
  }
  if (pos + length > text.size()) return invalid;
  for (size_t i = 1; i < length; ++i) {
    const uint8_t b = byte(pos + i);
    if ((b & 0xC0) != 0x80) return invalid;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return invalid;
  return {cp, static_cast<uint8_t>(length), true};
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const DecodedChar c = decode_utf8(text, pos);
    if (!c.valid) return false;
    pos += c.length;
  }
  return true;
}

CharClass char_class(char32_t cp) {
  if (cp < 128) return ascii_classes()[cp];
  return classify_slow(cp);
}

}  // namespace lnx::data

// ---- word characters, combining classes, NFC ----

namespace lnx::data {
namespace {

constexpr char32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161, kHangulT = 0x11A7;
constexpr char32_t kHangulLCount = 19, kHangulVCount = 21, kHangulTCount = 28;
constexpr char32_t kHangulNCount = kHangulVCount * kHangulTCount, kHangulSCount = kHangulLCount * kHangulNCount;

// An invalid byte travels through the algorithm as a code point outside Unicode.
constexpr char32_t kInvalidByteBase = 0x110000;

const CanonicalDecomposition* find_decomposition(char32_t cp) {
  const CanonicalDecomposition* begin = unicode_tables::kCanonicalDecompositions;
  const CanonicalDecomposition* end = begin + unicode_tables::kCanonicalDecompositionsCount;
  const CanonicalDecomposition* it = std::lower_bound(
      begin, end, cp, [](const CanonicalDecomposition& d, char32_t value) { return d.code_point < value; });
  return it != end && it->code_point == cp ? it : nullptr;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kHangulS && cp < kHangulS + kHangulSCount) {
    const char32_t s = cp - kHangulS;
    out.push_back(kHangulL + s / kHangulNCount);
    out.push_back(kHangulV + (s % kHangulNCount) / kHangulTCount);
    if (s % kHangulTCount != 0) out.push_back(kHangulT + s % kHangulTCount);
    return;
  }
  const CanonicalDecomposition* d = cp < 0xC0 || cp >= kInvalidByteBase ? nullptr : find_decomposition(cp);
  if (d == nullptr) {
    out.push_back(cp);
    return;
  }
  decompose(d->first, out);
  if (d->second != 0) decompose(d->second, out);
}

// (first, second) -> primary composite.
const std::unordered_map<uint64_t, char32_t>& composition_table() {
  static const std::unordered_map<uint64_t, char32_t> table = [] {
    std::unordered_map<uint64_t, char32_t> t;
    for (size_t i = 0; i < unicode_tables::kCanonicalDecompositionsCount; ++i) {
      const CanonicalDecomposition& d = unicode_tables::kCanonicalDecompositions[i];
      if (d.composes) t.emplace((static_cast<uint64_t>(d.first) << 32) | d.second, d.code_point);
    }
    return t;
  }();
  return table;
}

// The composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kHangulL && a < kHangulL + kHangulLCount && b >= kHangulV && b < kHangulV + kHangulVCount)
    return kHangulS + ((a - kHangulL) * kHangulVCount + (b - kHangulV)) * kHangulTCount;
  if (a >= kHangulS && a < kHangulS + kHangulSCount && (a - kHangulS) % kHangulTCount == 0 && b > kHangulT &&
      b < kHangulT + kHangulTCount)
    return a + (b - kHangulT);
  const auto& table = composition_table();
  const auto it = table.find((static_cast<uint64_t>(a) << 32) | b);
  return it == table.end() ? 0 : it->second;
}

}  // namespace

bool is_word_char(char32_t cp) {
  if (cp < 128) return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || cp == '_';
  return in_ranges(cp, unicode_tables::kWordRanges, unicode_tables::kWordRangesCount);
}

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300 || cp >= kInvalidByteBase) return 0;
  const CombiningClassRange* begin = unicode_tables::kCombiningClassRanges;
  const CombiningClassRange* end = begin + unicode_tables::kCombiningClassRangesCount;
  const CombiningClassRange* it =
      std::lower_bound(begin, end, cp, [](const CombiningClassRange& r, char32_t value) { return r.last < value; });
  return it != end && it->first <= cp ? it->ccc : 0;
}

std::string nfc(std::string_view text) {
  // Every code point below U+0300 is its own NFC and starts no composition with what
  // precedes it; such text is already normalized. U+0300 is the first with a lead byte 0xCC.
  if (std::none_of(text.begin(), text.end(), [](char b) { return static_cast<uint8_t>(b) >= 0xCC; }))
    return std::string(text);
  // 1. Full canonical decomposition.
  std::vector<char32_t> chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const DecodedChar c = decode_utf8(text, pos);
    if (c.valid)
      decompose(c.code_point, chars);
    else
      chars.push_back(kInvalidByteBase + static_cast<uint8_t>(text[pos]));
    pos += c.length;
  }
  // 2. Canonical ordering: each run of non-starters sorted stably by combining class.
  for (size_t i = 0; i < chars.size();) {
    if (combining_class(chars[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < chars.size() && combining_class(chars[j]) != 0) ++j;
    std::stable_sort(chars.begin() + static_cast<ptrdiff_t>(i), chars.begin() + static_cast<ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // 3. Canonical composition: a character joins the last starter unless a character between
  // them has a combining class of 0 or at least its own (it is blocked).
  std::vector<char32_t> out;
  out.reserve(chars.size());
  size_t starter = 0;
  bool have_starter = false;
  int last_class = -1;  // class of the last character appended after the starter; -1: none
  for (const char32_t c : chars) {
    const int cls = combining_class(c);
    if (have_starter && (last_class < 0 || (last_class != 0 && last_class < cls))) {
      if (const char32_t composite = compose(out[starter], c); composite != 0) {
        out[starter] = composite;
        continue;
      }
    }
    if (cls == 0) {
      starter = out.size();
      have_starter = true;
      last_class = -1;
    } else {
      last_class = cls;
    }
    out.push_back(c);
  }
  std::string result;
  result.reserve(text.size());
  for (const char32_t c : out) {
    if (c >= kInvalidByteBase)
      result.push_back(static_cast<char>(c - kInvalidByteBase));
    else
      append_utf8(result, c);
  }
  return result;
}

}  // namespace lnx::data
