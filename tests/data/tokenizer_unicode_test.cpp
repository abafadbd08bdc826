// UTF-8 decoding (strict, RFC 3629) and the character classes of the GPT-2 pre-tokenizer.
#include <gtest/gtest.h>

#include <string>

#include "data/unicode.h"

namespace lnx::data {
namespace {

TEST(Unicode, DecodesEveryLength) {
  const std::string text = "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80";  // a é 日 😀
  const char32_t expected_cp[] = {U'a', 0xE9, 0x65E5, 0x1F600};
  const uint8_t expected_len[] = {1, 2, 3, 4};
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    const DecodedChar c = decode_utf8(text, pos);
    EXPECT_TRUE(c.valid);
    EXPECT_EQ(c.code_point, expected_cp[i]);
    EXPECT_EQ(c.length, expected_len[i]);
    pos += c.length;
  }
  EXPECT_EQ(pos, text.size());
}

TEST(Unicode, RejectsInvalidSequencesOneByteAtATime) {
  const std::string bad[] = {
      "\x80",              // lone continuation byte
      "\xC3",              // truncated 2-byte sequence
      "\xE6\x97",          // truncated 3-byte sequence
      "\xC0\xAF",          // overlong '/'
      "\xE0\x80\xAF",      // overlong '/'
      "\xED\xA0\x80",      // surrogate U+D800
      "\xF4\x90\x80\x80",  // U+110000, above the Unicode range
      "\xFF",              // never valid
      "\xC3\x28",          // lead byte followed by ASCII
  };
  for (const std::string& s : bad) {
    const DecodedChar c = decode_utf8(s, 0);
    EXPECT_FALSE(c.valid) << "bytes of length " << s.size();
    EXPECT_EQ(c.length, 1);
    EXPECT_EQ(c.code_point, kReplacementChar);
    EXPECT_FALSE(is_valid_utf8(s));
  }
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF is the last valid one
}

TEST(Unicode, AppendEncodesWhatDecodeReads) {
  for (const char32_t cp :
       {char32_t{0x24}, char32_t{0x7FF}, char32_t{0x800}, char32_t{0xFFFD}, char32_t{0x10000}, char32_t{0x10FFFF}}) {
    std::string s;
    append_utf8(s, cp);
    const DecodedChar c = decode_utf8(s, 0);
    EXPECT_TRUE(c.valid);
    EXPECT_EQ(c.code_point, cp);
    EXPECT_EQ(c.length, s.size());
  }
}

TEST(Unicode, CharacterClassesFollowTheGeneratedTables) {
  EXPECT_STREQ(unicode_tables::kUnicodeVersion, "14.0.0");
  // Letters: ASCII, Latin-1, CJK, Hebrew, Arabic, a modifier letter (Lm), a titlecase (Lt).
  for (const char32_t cp : {U'a', U'Z', char32_t{0xE9}, char32_t{0x65E5}, char32_t{0x05E9}, char32_t{0x0627},
                            char32_t{0x02B0}, char32_t{0x01C5}})
    EXPECT_EQ(char_class(cp), CharClass::Letter) << std::hex << static_cast<uint32_t>(cp);
  // Numbers: Nd, No (superscript two, vulgar half), Nl (Roman numeral twelve).
  for (const char32_t cp : {U'0', U'9', char32_t{0xB2}, char32_t{0xBD}, char32_t{0x216B}, char32_t{0x0663}})
    EXPECT_EQ(char_class(cp), CharClass::Number) << std::hex << static_cast<uint32_t>(cp);
  // White_Space, including NEL, NBSP and the ideographic space; not the zero-width space.
  for (const char32_t cp :
       {U' ', U'\t', U'\n', U'\v', U'\f', U'\r', char32_t{0x85}, char32_t{0xA0}, char32_t{0x2028}, char32_t{0x3000}})
    EXPECT_EQ(char_class(cp), CharClass::Whitespace) << std::hex << static_cast<uint32_t>(cp);
  // Other: punctuation, symbols, combining marks (Mn), emoji, controls that are not White_Space.
  for (const char32_t cp :
       {U'!', U'\'', U'_', char32_t{0x0301}, char32_t{0x1F600}, char32_t{0x200B}, char32_t{0x1F}, char32_t{0x3002}})
    EXPECT_EQ(char_class(cp), CharClass::Other) << std::hex << static_cast<uint32_t>(cp);
}

}  // namespace
}  // namespace lnx::data
