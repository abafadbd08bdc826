// Character tokenizer: vocabulary layout, round trips, <unk> for unknown characters and
// invalid bytes, specials, save/load.
#include <gtest/gtest.h>

#include "data/tokenizer.h"
#include "tensor/error.h"
#include "tokenizer_test_util.h"

namespace lnx::data {
namespace {

using testing::kMultilingual;
using testing::ScratchDir;

TEST(CharTokenizer, VocabularyIsSortedCodePointsThenSpecials) {
  const auto tok = train_char_tokenizer("cabbage", {"<|endoftext|>"});
  EXPECT_EQ(tok->kind(), "char");
  // a b c e g, then <unk>, then the caller's special.
  EXPECT_EQ(tok->vocab_size(), 7);
  EXPECT_EQ(tok->encode("gabc"), (std::vector<int32_t>{4, 0, 1, 2}));
  EXPECT_EQ(tok->special_token("<unk>"), 5);
  EXPECT_EQ(tok->special_token("<|endoftext|>"), 6);
  EXPECT_FALSE(tok->special_token("<pad>").has_value());
}

TEST(CharTokenizer, RoundTripsMultilingualText) {
  const auto tok = train_char_tokenizer(testing::kMultilingual);
  const std::vector<int32_t> ids = tok->encode(kMultilingual);
  // One id per code point: "é" (2 bytes) and "😀" (4 bytes) are one token each.
  EXPECT_EQ(tok->encode("é😀").size(), 2u);
  EXPECT_EQ(tok->decode(ids), kMultilingual);
}

TEST(CharTokenizer, UnknownCharactersAndInvalidBytesBecomeUnk) {
  const auto tok = train_char_tokenizer("ab");
  const int32_t unk = *tok->special_token("<unk>");
  EXPECT_EQ(unk, 2);
  // 'z' unknown, "日" unknown (one id for its 3 bytes), each invalid byte one unk.
  EXPECT_EQ(tok->encode("az日\xFF\x80"
                        "b"),
            (std::vector<int32_t>{0, unk, unk, unk, unk, 1}));
  EXPECT_EQ(tok->decode({0, unk, 1}), "a<unk>b");
}

TEST(CharTokenizer, SpecialsAreRecognisedInTextAndNeverSplit) {
  const auto tok = train_char_tokenizer("<|ed>xy", {"<|e|>", "<|end|>"});
  const int32_t end = *tok->special_token("<|end|>");
  const int32_t e = *tok->special_token("<|e|>");
  const std::vector<int32_t> ids = tok->encode("x<|end|>y<|e|><|en");
  ASSERT_EQ(ids.size(), 8u);  // x, <|end|>, y, <|e|>, then '<' '|' 'e' 'n'(unk)
  EXPECT_EQ(ids[1], end);
  EXPECT_EQ(ids[3], e);
  EXPECT_EQ(ids[7], *tok->special_token("<unk>"));
  EXPECT_EQ(tok->decode(ids), "x<|end|>y<|e|><|e<unk>");
}

TEST(CharTokenizer, RejectsBadSpecialsAndIds) {
  EXPECT_THROW(train_char_tokenizer("ab", {"<s>", "<s>"}), ValueError);
  EXPECT_THROW(train_char_tokenizer("ab", {""}), ValueError);
  const auto tok = train_char_tokenizer("ab");
  EXPECT_THROW(tok->decode({3}), ValueError);
  EXPECT_THROW(tok->decode({-1}), ValueError);
}

TEST(CharTokenizer, SaveLoadGivesIdenticalEncodings) {
  const ScratchDir dir;
  const auto tok = train_char_tokenizer(kMultilingual, {"<|endoftext|>"});
  tok->save(dir.file("char.json"));
  const auto loaded = load_tokenizer(dir.file("char.json"));
  EXPECT_EQ(loaded->kind(), "char");
  EXPECT_EQ(loaded->vocab_size(), tok->vocab_size());
  const std::string probe = kMultilingual + "<|endoftext|>zq\xFF";
  EXPECT_EQ(loaded->encode(probe), tok->encode(probe));
  EXPECT_EQ(loaded->special_token("<|endoftext|>"), tok->special_token("<|endoftext|>"));
  // The write is atomic: no temporary file is left next to the result.
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.file(""))) ++files;
  EXPECT_EQ(files, 1);
}

TEST(CharTokenizer, MalformedFilesRaiseIOError) {
  const ScratchDir dir;
  const std::string cases[] = {
      R"({"type": "char", "version": 1, "chars": [98, 97], "specials": ["<unk>"]})",  // unsorted
      R"({"type": "char", "version": 1, "chars": ["a"], "specials": ["<unk>"]})",     // wrong type
      R"({"type": "char", "version": 1, "chars": [55296], "specials": ["<unk>"]})",   // surrogate
      R"({"type": "char", "version": 1, "chars": [97], "specials": []})",             // no <unk>
      R"({"type": "char", "version": 1, "chars": [97]})",                             // no specials
      R"({"type": "char", "version": 2, "chars": [97], "specials": ["<unk>"]})",      // version
      R"({"type": "char", "version": 1, "chars": [97], "specials": ["<unk>", "<unk>"]})",
      R"({"type": "wordpiece"})",
      R"({"type": "char", "version": 1, "chars": [97, 98], "speci)",  // truncated
  };
  int i = 0;
  for (const std::string& text : cases) {
    const std::string path = dir.write(fmt::format("bad{}.json", i++), text);
    try {
      load_tokenizer(path);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const IOError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace lnx::data
