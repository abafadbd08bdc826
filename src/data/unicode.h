// UTF-8 decoding and encoding, the character classes the pre-tokenizers need (\p{L}, \p{N},
// \s), "word" characters (for added tokens with single_word) and NFC normalization. Units:
// byte offsets into UTF-8 strings; code points as char32_t. The tables are generated from
// Unicode 14.0.0 (scripts/gen_unicode_tables.py).
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

// [first, last] with canonical combining class ccc (only non-zero classes are listed).
struct CombiningClassRange {
  char32_t first;
  char32_t last;
  uint8_t ccc;
};

// code_point -> first (+ second) canonically; second == 0 for a singleton. composes: the pair
// is a primary composite, i.e. NFC recomposes (first, second) into code_point.
struct CanonicalDecomposition {
  char32_t code_point;
  char32_t first;
  char32_t second;
  bool composes;
};

namespace unicode_tables {
extern const char kUnicodeVersion[];
extern const CodePointRange kLetterRanges[];
extern const size_t kLetterRangesCount;
extern const CodePointRange kNumberRanges[];
extern const size_t kNumberRangesCount;
extern const CodePointRange kWordRanges[];
extern const size_t kWordRangesCount;
extern const CombiningClassRange kCombiningClassRanges[];
extern const size_t kCombiningClassRangesCount;
extern const CanonicalDecomposition kCanonicalDecompositions[];  // sorted by code_point
extern const size_t kCanonicalDecompositionsCount;
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

// A character of Rust regex's \w, which Hugging Face tests around an added token with
// single_word: letters, marks, Nd, Nl, Pc and U+200C/U+200D (Other_Alphabetic symbols such as
// the circled letters are not word characters here; they are in Rust's \w).
bool is_word_char(char32_t code_point);

// Canonical combining class (0 for starters and unassigned code points).
uint8_t combining_class(char32_t code_point);

// Unicode Normalization Form C (canonical decomposition, canonical ordering, canonical
// composition, Hangul included). Bytes that are not valid UTF-8 are kept as they are and act
// as starters that compose with nothing. Text below U+0300 is returned unchanged without work.
std::string nfc(std::string_view text);

}  // namespace lnx::data
