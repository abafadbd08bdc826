// UTF-8 decoding/encoding and character-class lookup (binary search over generated ranges,
// with a table for ASCII because almost all text the tokenizers see is ASCII).
#include "data/unicode.h"

#include <algorithm>
#include <array>

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
