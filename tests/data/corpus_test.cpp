// Built-in corpus: determinism, size, character set, story layout, and its structure — every
// arithmetic fact (words and digits) is true, counting stories add up, recall questions are
// answered with the place the object was put, world facts never contradict each other — plus
// number words and the unigram entropy on hand-computed sequences.
#include "data/corpus.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>

#include "tensor/error.h"

namespace lnx::data {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "Twenty-one" -> 21 (any case); -1 if not a number word.
int64_t parse_number(std::string word) {
  if (!word.empty()) word[0] = static_cast<char>(std::tolower(word[0]));
  for (int64_t n = 0; n <= 100; ++n)
    if (number_words(n) == word) return n;
  return -1;
}

const std::string& sample() {
  static const std::string text = builtin_corpus(300000, 2024);
  return text;
}

TEST(Corpus, DeterministicPerSeedAndSized) {
  const std::string a = builtin_corpus(50000, 1), b = builtin_corpus(50000, 1), c = builtin_corpus(50000, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_GE(a.size(), 50000u);
  EXPECT_LE(a.size(), 50000u + 2000u);  // stops at the first story boundary past the target
  EXPECT_EQ(builtin_corpus(0, 1), "");
  EXPECT_THROW(builtin_corpus(-1, 1), ValueError);
  // A smaller request is a prefix of a larger one with the same seed.
  EXPECT_EQ(builtin_corpus(200000, 1).substr(0, a.size()), a);
  const std::string big = builtin_corpus(1500000, 3);  // the size training uses
  EXPECT_GE(big.size(), 1500000u);
}

TEST(Corpus, CharacterSetAndStoryLayout) {
  const std::string& text = sample();
  const std::string allowed = " \n.,:?!'\"-+=";
  for (const char ch : text) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    allowed.find(ch) != std::string::npos;
    ASSERT_TRUE(ok) << "unexpected character code " << int(static_cast<unsigned char>(ch));
  }
  const auto lines = lines_of(text);
  ASSERT_GT(lines.size(), 100u);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i % 2 == 1) {
      EXPECT_EQ(lines[i], "") << "a blank line follows every story";
      continue;
    }
    ASSERT_FALSE(lines[i].empty());
    EXPECT_TRUE(std::isupper(static_cast<unsigned char>(lines[i][0]))) << lines[i];
    EXPECT_NE(std::string(".?\"").find(lines[i].back()), std::string::npos) << lines[i];
    EXPECT_EQ(lines[i].find("  "), std::string::npos) << lines[i];
  }
}

TEST(Corpus, ArithmeticFactsAreTrue) {
  const std::string& text = sample();
  const std::regex words(R"(([A-Za-z-]+) (plus|minus|times) ([a-z-]+) is ([a-z-]+)\.)");
  const std::regex question(R"(What is ([a-z-]+) (plus|minus|times) ([a-z-]+)\?" \"([A-Za-z-]+),\")");
  const std::regex digits(R"((\d+) ([-+x]) (\d+) = (\d+)\.)");
  auto apply = [](int64_t a, const std::string& op, int64_t b) {
    if (op == "plus" || op == "+") return a + b;
    if (op == "minus" || op == "-") return a - b;
    return a * b;
  };
  int64_t checked_words = 0, checked_questions = 0, checked_digits = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), words); it != std::sregex_iterator(); ++it) {
    const int64_t a = parse_number((*it)[1]), b = parse_number((*it)[3]), c = parse_number((*it)[4]);
    ASSERT_TRUE(a >= 0 && b >= 0 && c >= 0) << it->str();
    ASSERT_EQ(apply(a, (*it)[2], b), c) << it->str();
    ++checked_words;
  }
  for (auto it = std::sregex_iterator(text.begin(), text.end(), question); it != std::sregex_iterator(); ++it) {
    ASSERT_EQ(apply(parse_number((*it)[1]), (*it)[2], parse_number((*it)[3])), parse_number((*it)[4])) << it->str();
    ++checked_questions;
  }
  for (auto it = std::sregex_iterator(text.begin(), text.end(), digits); it != std::sregex_iterator(); ++it) {
    ASSERT_EQ(apply(std::stoll((*it)[1]), (*it)[2], std::stoll((*it)[3])), std::stoll((*it)[4])) << it->str();
    ++checked_digits;
  }
  EXPECT_GT(checked_words, 300);
  EXPECT_GT(checked_questions, 100);
  EXPECT_GT(checked_digits, 100);
}

TEST(Corpus, CountingStoriesAddUp) {
  const std::regex story(
      R"(([A-Z][a-z]+) had ([a-z-]+) [a-z]+\. [A-Z][a-z]+ gave (?:him|her) ([a-z-]+) more, so now \1 has ([a-z-]+) [a-z]+\. Then \1 ate ([a-z-]+) of them, and ([a-z-]+) were left\.)");
  int64_t checked = 0;
  for (const std::string& line : lines_of(sample())) {
    std::smatch m;
    if (!std::regex_search(line, m, story)) continue;
    const int64_t had = parse_number(m[2]), given = parse_number(m[3]), now = parse_number(m[4]);
    const int64_t ate = parse_number(m[5]), left = parse_number(m[6]);
    ASSERT_EQ(had + given, now) << line;
    ASSERT_EQ(now - ate, left) << line;
    ASSERT_GT(left, 0) << line;
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST(Corpus, RecallQuestionsNameWhereTheObjectWasPut) {
  const std::regex ask(R"(Where is the ([a-z]+)\?" "The \1 is in the ([a-z]+),")");
  int64_t checked = 0;
  for (const std::string& line : lines_of(sample())) {
    std::smatch m;
    if (!std::regex_search(line, m, ask)) continue;
    const std::string put = "the " + m[1].str() + " in the " + m[2].str();
    EXPECT_NE(line.find(put), std::string::npos) << line;
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST(Corpus, WorldFactsAreConsistentAcrossSeeds) {
  const std::regex lives(R"(([A-Z][a-z]+) lives in ([A-Z][a-z]+)\.)");
  const std::regex sound(R"(the ([a-z]+) says ([a-z]+)\.)");
  const std::regex color(R"(The ([a-z]+) is ([a-z]+)\.)");
  std::map<std::string, std::string> home, says, colour;
  auto collect = [](const std::string& text, const std::regex& re, std::map<std::string, std::string>& facts) {
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
      const auto [pos, inserted] = facts.emplace((*it)[1], (*it)[2]);
      ASSERT_EQ(pos->second, (*it)[2].str()) << "contradiction about " << (*it)[1];
    }
  };
  for (const uint64_t seed : {1ull, 2ull, 3ull}) {
    const std::string text = builtin_corpus(150000, seed);
    collect(text, lives, home);
    collect(text, sound, says);
    collect(text, color, colour);
  }
  EXPECT_EQ(home.size(), 24u);  // every person's home appears, always the same town
  EXPECT_GE(says.size(), 10u);
  EXPECT_EQ(says["cow"], "moo");
  EXPECT_EQ(colour["lemon"], "yellow");
}

TEST(Corpus, CharacterEntropyIsEnglishLike) {
  const std::string& text = sample();
  std::vector<int32_t> ids(text.begin(), text.end());
  const double bits = unigram_entropy_bits(ids, 128);
  // English letters carry about 4.1 bits each; a small world's text a little less.
  EXPECT_GT(bits, 3.5);
  EXPECT_LT(bits, 4.7);
}

TEST(Corpus, NumberWords) {
  EXPECT_EQ(number_words(0), "zero");
  EXPECT_EQ(number_words(13), "thirteen");
  EXPECT_EQ(number_words(20), "twenty");
  EXPECT_EQ(number_words(21), "twenty-one");
  EXPECT_EQ(number_words(40), "forty");
  EXPECT_EQ(number_words(99), "ninety-nine");
  EXPECT_EQ(number_words(100), "one hundred");
  EXPECT_THROW(number_words(101), ValueError);
  EXPECT_THROW(number_words(-1), ValueError);
}

TEST(UnigramEntropy, HandComputed) {
  EXPECT_DOUBLE_EQ(unigram_entropy_bits({0, 0, 1, 1}, 2), 1.0);
  EXPECT_DOUBLE_EQ(unigram_entropy_bits({0, 1, 2, 3}, 4), 2.0);
  EXPECT_DOUBLE_EQ(unigram_entropy_bits({3, 3, 3}, 4), 0.0);
  EXPECT_DOUBLE_EQ(unigram_entropy_bits({}, 4), 0.0);
  // p = (3/4, 1/4): -(0.75 log2 0.75 + 0.25 log2 0.25) = 0.811278124459133
  EXPECT_NEAR(unigram_entropy_bits({0, 0, 0, 1}, 2), 0.811278124459133, 1e-14);
  // Unused vocabulary entries do not change the value.
  EXPECT_NEAR(unigram_entropy_bits({0, 0, 0, 1}, 1000), 0.811278124459133, 1e-14);
  EXPECT_THROW(unigram_entropy_bits({0, 2}, 2), ValueError);
  EXPECT_THROW(unigram_entropy_bits({-1}, 2), ValueError);
  EXPECT_THROW(unigram_entropy_bits({0}, 0), ValueError);
}

}  // namespace
}  // namespace lnx::data
