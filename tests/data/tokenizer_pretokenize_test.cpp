// The hand-written GPT-2 split pattern against hand-worked cases. Each expected split was
// derived by applying the regex's alternatives in order (and matches Python's `regex`).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/tokenizer_pretokenize.h"

namespace lnx::data {
namespace {

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string_view> views;
  gpt2_pretokenize(text, views);
  return {views.begin(), views.end()};
}

using Pieces = std::vector<std::string>;

TEST(Gpt2Pretokenize, Contractions) {
  EXPECT_EQ(split("don't we'll they're I've I'm he'd it's"),
            (Pieces{"don", "'t", " we", "'ll", " they", "'re", " I", "'ve", " I", "'m", " he", "'d", " it", "'s"}));
  // Only lower-case suffixes are contractions; "'S" is punctuation then a word.
  EXPECT_EQ(split("IT'S"), (Pieces{"IT", "'", "S"}));
  // A leading quote run swallows the apostrophe: "''s" is "''" then "s".
  EXPECT_EQ(split("''s"), (Pieces{"''", "s"}));
  EXPECT_EQ(split("'hello'"), (Pieces{"'", "hello", "'"}));
}

TEST(Gpt2Pretokenize, LettersNumbersAndPunctuationRuns) {
  EXPECT_EQ(split("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("abc123def"), (Pieces{"abc", "123", "def"}));
  EXPECT_EQ(split("x = 3.14159!"), (Pieces{"x", " =", " 3", ".", "14159", "!"}));
  EXPECT_EQ(split("wait...!?  ok"), (Pieces{"wait", "...!?", " ", " ok"}));
  EXPECT_EQ(split(" ,,, 42"), (Pieces{" ,,,", " 42"}));
  EXPECT_EQ(split("a_b"), (Pieces{"a", "_", "b"}));
}

TEST(Gpt2Pretokenize, WhitespaceKeepsItsLastSpaceForTheNextWord) {
  // \s+(?!\S): a run followed by a word gives up its last character to the word's " ?".
  EXPECT_EQ(split("a   b"), (Pieces{"a", "  ", " b"}));
  // Newlines are whitespace but not the literal space of " ?", so "\n" stays separate.
  EXPECT_EQ(split("a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
  EXPECT_EQ(split("a\n\n  b"), (Pieces{"a", "\n\n ", " b"}));
  // A single whitespace before a word that is not a space: the \s+ fallback.
  EXPECT_EQ(split("a\tb"), (Pieces{"a", "\t", "b"}));
  // Trailing whitespace is one run (nothing follows, so the lookahead holds).
  EXPECT_EQ(split("end  \n "), (Pieces{"end", "  \n "}));
  EXPECT_EQ(split("   "), (Pieces{"   "}));
  EXPECT_EQ(split(" "), (Pieces{" "}));
  EXPECT_EQ(split(""), (Pieces{}));
}

TEST(Gpt2Pretokenize, UnicodeCategories) {
  EXPECT_EQ(split("日本語 テキスト"), (Pieces{"日本語", " テキスト"}));
  // Combining acute accent (Mn) is not a letter: it splits the word.
  EXPECT_EQ(split("cafe\xCC\x81s"), (Pieces{"cafe", "\xCC\x81", "s"}));
  EXPECT_EQ(split("x²½ Ⅻ"), (Pieces{"x", "²½", " Ⅻ"}));
  EXPECT_EQ(split("שלום, עולם"), (Pieces{"שלום", ",", " עולם"}));
  EXPECT_EQ(split("hi 😀😀!"), (Pieces{"hi", " 😀😀!"}));
  // No-break space is whitespace but not " ?": it stands alone before a word.
  EXPECT_EQ(split("a\xC2\xA0"
                  "b"),
            (Pieces{"a", "\xC2\xA0", "b"}));
}

TEST(Gpt2Pretokenize, InvalidBytesAreSeparatePunctuationAndNothingIsLost) {
  EXPECT_EQ(split("ab\xFF"
                  "cd"),
            (Pieces{"ab", "\xFF", "cd"}));
  EXPECT_EQ(split(" \x80\x80x"), (Pieces{" \x80\x80", "x"}));
  const std::string messy = "a\xC3 \xE6\x97 9\xF0\x9F\x98\n\xED\xA0\x80'll";
  std::string joined;
  for (const std::string& p : split(messy)) {
    EXPECT_FALSE(p.empty());
    joined += p;
  }
  EXPECT_EQ(joined, messy);
}

}  // namespace
}  // namespace lnx::data
