// The hand-written split patterns against hand-worked cases. Each expected split was derived
// by applying the regex's alternatives in order (GPT-2's matches Python's `regex`, Llama-3's
// and Qwen2's what Hugging Face's tokenizers gives); tokenizer_hf_test.cpp checks whole
// tokenizers against tokenizers' ids.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/tokenizer_pretokenize.h"

namespace lnx::data {
namespace {

std::vector<std::string> split(std::string_view text, SplitPattern pattern = SplitPattern::Gpt2) {
  std::vector<std::string_view> views;
  pretokenize(pattern, text, views);
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

TEST(Llama3Pretokenize, ContractionsIgnoreCaseAndLongS) {
  const auto l3 = [](std::string_view t) { return split(t, SplitPattern::Llama3); };
  EXPECT_EQ(l3("it'S they'LL we'Ve"), (Pieces{"it", "'S", " they", "'LL", " we", "'Ve"}));
  EXPECT_EQ(l3("it'\xC5\xBF x"), (Pieces{"it", "'\xC5\xBF", " x"}));  // U+017F folds to 's'
  EXPECT_EQ(l3("'hello'"), (Pieces{"'hello", "'"}));                  // [^\r\n\p{L}\p{N}]?\p{L}+ takes the quote
}

TEST(Llama3Pretokenize, LettersTakeOneLeadingNonLetter) {
  const auto l3 = [](std::string_view t) { return split(t, SplitPattern::Llama3); };
  EXPECT_EQ(l3("(word) x\tab"), (Pieces{"(word", ")", " x", "\tab"}));
  EXPECT_EQ(l3("x\xC2\xA0y"), (Pieces{"x", "\xC2\xA0y"}));  // no-break space joins the word
  EXPECT_EQ(l3("a\nb"), (Pieces{"a", "\n", "b"}));          // but never a newline
}

TEST(Llama3Pretokenize, DigitsInThreesAndQwenInOnes) {
  EXPECT_EQ(split("1234567 x12", SplitPattern::Llama3), (Pieces{"123", "456", "7", " x", "12"}));
  EXPECT_EQ(split("1234", SplitPattern::Qwen2), (Pieces{"1", "2", "3", "4"}));
  EXPECT_EQ(split("\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4", SplitPattern::Llama3),
            (Pieces{"\xD9\xA1\xD9\xA2\xD9\xA3", "\xD9\xA4"}));  // Arabic-Indic digits
}

TEST(Llama3Pretokenize, PunctuationTakesTrailingNewlinesAndWhitespaceRunsSplitAtNewlines) {
  const auto l3 = [](std::string_view t) { return split(t, SplitPattern::Llama3); };
  EXPECT_EQ(l3("ok!!\n\nnext"), (Pieces{"ok", "!!\n\n", "next"}));
  EXPECT_EQ(l3("a ...?"), (Pieces{"a", " ...?"}));
  // \s*[\r\n]+ ends at the run's last newline; \s+(?!\S) leaves one space for the word.
  EXPECT_EQ(l3("x  \n\n  y"), (Pieces{"x", "  \n\n", " ", " y"}));
  EXPECT_EQ(l3("a\r\n\tb"), (Pieces{"a", "\r\n", "\tb"}));
  EXPECT_EQ(l3("end  "), (Pieces{"end", "  "}));
}

TEST(SplitPatterns, AreRecognisedByTheirExactRegex) {
  for (const SplitPattern p : {SplitPattern::Gpt2, SplitPattern::Llama3, SplitPattern::Qwen2})
    EXPECT_EQ(recognise_split_pattern(split_pattern_regex(p)), p) << split_pattern_name(p);
  EXPECT_FALSE(recognise_split_pattern("\\p{N}{1,3}").has_value());
  EXPECT_FALSE(recognise_split_pattern(std::string(split_pattern_regex(SplitPattern::Qwen2)) + "|x").has_value());
}

}  // namespace
}  // namespace lnx::data
