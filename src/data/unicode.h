// UTF-8 decoding and encoding, and the character classes the GPT-2 pre-tokenizer needs
// (\p{L}, \p{N}, \s). Units: byte offsets into UTF-8 strings; code points as char32_t.
// The L/N tables are generated from Unicode 14.0.0 (scripts/gen_unicode_tables.py).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lnx::data {

// One inclusive run [first, last] of code points.
struct CodePointRange {
  char32_t first;
  char32_t last;
};

namespace unicode_tables {
extern const char kUnicodeVersion[];
extern const CodePointRange kLetterRanges[];
extern const size_t kLetterRangesCount;
extern const CodePointRange kNumberRanges[];
extern const size_t kNumberRangesCount;
}  // namespace unicode_tables

// One decoded character. An invalid byte (a stray continuation byte, a truncated or
// overlong sequence, a surrogate, a value above U+10FFFF) decodes as a one-byte character
// with valid == false and code_point == U+FFFD, so callers can always advance by length.
struct DecodedChar {
  char32_t code_point;
  uint8_t length;  // bytes consumed, 1..4
  bool valid;
};

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes the character starting at byte offset pos (pos < text.size()), strictly per RFC 3629.
DecodedChar decode_utf8(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of a valid code point (not a surrogate, at most U+10FFFF).
void append_utf8(std::string& out, char32_t code_point);

// True when text is entirely valid UTF-8.
bool is_valid_utf8(std::string_view text);

// The classes the GPT-2 split pattern distinguishes. Whitespace is the Unicode White_Space
// property (what \s means in the Python `regex` module and in Oniguruma, which GPT-2 and
// Hugging Face tokenizers use); Letter is \p{L}, Number is \p{N}; Other is everything else,
// invalid bytes included.
enum class CharClass : uint8_t { Letter, Number, Whitespace, Other };

CharClass char_class(char32_t code_point);

}  // namespace lnx::data
