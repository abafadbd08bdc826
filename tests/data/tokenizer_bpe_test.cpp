// Byte-level BPE: training on corpora whose merges can be worked out by hand, tie-breaking,
// byte-exact round trips (multilingual and invalid UTF-8), specials, determinism, and
// save -> load giving identical encodings, and streaming decode.
#include <gtest/gtest.h>

#include <random>

#include "data/tokenizer.h"
#include "data/tokenizer_bpe_internal.h"
#include "tensor/error.h"
#include "tokenizer_test_util.h"

namespace lnx::data {
namespace {

using testing::kMultilingual;
using testing::ScratchDir;

const BpeTokenizer& as_bpe(const std::unique_ptr<Tokenizer>& tok) { return dynamic_cast<const BpeTokenizer&>(*tok); }

std::vector<std::pair<int32_t, int32_t>> merge_pairs(const BpeTokenizer& tok) {
  std::vector<std::pair<int32_t, int32_t>> pairs;
  for (const BpeMerge& m : tok.merges()) pairs.emplace_back(m.left, m.right);
  return pairs;
}

// A corpus of mixed text, repeated with variations, big enough for a few hundred merges.
std::string sample_corpus() {
  std::string corpus;
  std::mt19937 rng(7);
  const char* words[] = {"the",  "cat", "sat", "on",    "mat", "it's", "don't", "running", "2024",
                         "日本", "語",  "😀",   "naïve", "  ",  "\n",   "x=1;",  "hello",   "world"};
  for (int i = 0; i < 4000; ++i) {
    corpus += words[rng() % std::size(words)];
    corpus += (rng() % 5 == 0) ? "\n" : " ";
  }
  return corpus;
}

TEST(BpeTrain, MergesOfATinyCorpusMatchHandComputation) {
  // Pre-tokens: "ab" x1, " ab" x2, " abc" x1. Pair counts: (a,b)=4, (' ',a)=3, (b,c)=1.
  // 1) a+b -> 256 "ab". Then (' ',256)=3, (256,c)=1.
  // 2) ' '+256 -> 257 " ab". Then (257,c)=1.
  // 3) 257+c -> 258 " abc". No pair is left, so training stops below the requested size.
  const auto tok = train_bpe_tokenizer("ab ab ab abc", 300);
  const BpeTokenizer& bpe = as_bpe(tok);
  EXPECT_EQ(merge_pairs(bpe), (std::vector<std::pair<int32_t, int32_t>>{{'a', 'b'}, {' ', 256}, {257, 'c'}}));
  EXPECT_EQ(tok->vocab_size(), 259);
  EXPECT_EQ(bpe.token_bytes(258), " abc");
  EXPECT_EQ(tok->encode(" abc ab abx"), (std::vector<int32_t>{258, 257, 257, 'x'}));
  EXPECT_EQ(tok->encode("ba"), (std::vector<int32_t>{'b', 'a'}));
}

TEST(BpeTrain, TiesGoToTheSmallerPairOfIds) {
  // "ab" and " cd": (' ',c), (a,b), (c,d) all occur once. The smallest pair (32,99) goes
  // first, which leaves (256,d); then (97,98) < (256,100).
  const auto tok = train_bpe_tokenizer("ab cd", 1000);
  EXPECT_EQ(merge_pairs(as_bpe(tok)), (std::vector<std::pair<int32_t, int32_t>>{{' ', 'c'}, {'a', 'b'}, {256, 'd'}}));
}

TEST(BpeTrain, StopsAtTheRequestedVocabularySizeIncludingSpecials) {
  const auto tok = train_bpe_tokenizer(sample_corpus(), 300, {"<|endoftext|>", "<pad>"});
  EXPECT_EQ(tok->vocab_size(), 300);
  EXPECT_EQ(as_bpe(tok).merges().size(), 42u);
  EXPECT_EQ(tok->special_token("<|endoftext|>"), 298);
  EXPECT_EQ(tok->special_token("<pad>"), 299);
  EXPECT_THROW(train_bpe_tokenizer("abc", 257, {"<a>", "<b>"}), ValueError);
  EXPECT_THROW(train_bpe_tokenizer("abc", 300, {"<a>", "<a>"}), ValueError);
}

TEST(BpeTrain, IsDeterministic) {
  const std::string corpus = sample_corpus();
  const auto a = train_bpe_tokenizer(corpus, 400, {"<|endoftext|>"});
  const auto b = train_bpe_tokenizer(corpus, 400, {"<|endoftext|>"});
  EXPECT_EQ(merge_pairs(as_bpe(a)), merge_pairs(as_bpe(b)));
  EXPECT_EQ(a->encode(corpus), b->encode(corpus));
}

TEST(BpeTrain, SpecialsInTheCorpusAreNotLearnedFrom) {
  // Without cutting at the special, "<|x|>" pieces would be the most frequent pairs.
  std::string corpus;
  for (int i = 0; i < 50; ++i) corpus += "<|x|>";
  corpus += "ab ab";
  const auto tok = train_bpe_tokenizer(corpus, 1000, {"<|x|>"});
  EXPECT_EQ(merge_pairs(as_bpe(tok)), (std::vector<std::pair<int32_t, int32_t>>{{'a', 'b'}, {' ', 256}}));
}

TEST(BpeEncode, MergesApplyByRankNotByPosition) {
  // Pre-tokens "bc" x3, "ab" x2 (and "\n" x4): (b,c) is merge 0, (a,b) merge 1. In "abc" the
  // leftmost pair (a,b) must wait for the better-ranked (b,c), which leaves a + bc.
  const auto tok = train_bpe_tokenizer("bc\nbc\nbc\nab\nab", 258);
  ASSERT_EQ(merge_pairs(as_bpe(tok)), (std::vector<std::pair<int32_t, int32_t>>{{'b', 'c'}, {'a', 'b'}}));
  EXPECT_EQ(tok->encode("abc"), (std::vector<int32_t>{'a', 256}));
  EXPECT_EQ(tok->encode("abab"), (std::vector<int32_t>{257, 257}));
  EXPECT_EQ(tok->encode("\nbcbc"), (std::vector<int32_t>{'\n', 256, 256}));
}

TEST(BpeEncode, RoundTripsAnyBytes) {
  const auto tok = train_bpe_tokenizer(sample_corpus() + kMultilingual, 600, {"<|endoftext|>"});
  const std::string ascii = "The quick brown fox jumps over the lazy dog; it's 2024!\n\tDone.  ";
  const std::string invalid = std::string("bad \xFF\xFE bytes \xC3 and \xED\xA0\x80 and \x80") + '\0' + "nul";
  for (const std::string& text : {ascii, kMultilingual, invalid, std::string(), std::string(300, ' ')}) {
    EXPECT_EQ(tok->decode(tok->encode(text)), text);
  }
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
    ASSERT_EQ(tok->decode(tok->encode(bytes)), bytes);
  }
  EXPECT_THROW(tok->decode({static_cast<int32_t>(tok->vocab_size())}), ValueError);
}

TEST(BpeEncode, SpecialsAreRecognisedInTextAndNeverSplit) {
  const auto tok = train_bpe_tokenizer(sample_corpus(), 400, {"<|endoftext|>", "<|end|>"});
  const int32_t eot = *tok->special_token("<|endoftext|>");
  const int32_t end = *tok->special_token("<|end|>");
  const std::string text = "the cat<|endoftext|>sat<|end|><|endoftext|> <|end";
  const std::vector<int32_t> ids = tok->encode(text);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eot), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), end), 1);
  EXPECT_EQ(tok->decode(ids), text);
  // The text of a special sits in no ordinary token: "<|end" (no closing) is not special.
  EXPECT_GE(tok->encode("<|end").size(), 2u);
  EXPECT_EQ(tok->encode("<|endoftext|>"), (std::vector<int32_t>{eot}));
}

TEST(BpeEncode, SaveLoadGivesIdenticalEncodings) {
  const ScratchDir dir;
  const std::string corpus = sample_corpus() + kMultilingual;
  const auto tok = train_bpe_tokenizer(corpus, 500, {"<|endoftext|>"});
  tok->save(dir.file("tokenizer.json"));
  const auto loaded = load_tokenizer(dir.file("tokenizer.json"));
  EXPECT_EQ(loaded->kind(), "bpe");
  EXPECT_EQ(loaded->vocab_size(), tok->vocab_size());
  EXPECT_EQ(merge_pairs(as_bpe(loaded)), merge_pairs(as_bpe(tok)));
  const std::string probe = corpus + "<|endoftext|>" + "\xFF\xC3 new words zebra";
  EXPECT_EQ(loaded->encode(probe), tok->encode(probe));
  EXPECT_EQ(loaded->special_token("<|endoftext|>"), tok->special_token("<|endoftext|>"));
  // Saving what was loaded reproduces the file byte for byte.
  loaded->save(dir.file("again.json"));
  EXPECT_EQ(testing::read_file(dir.file("again.json")), testing::read_file(dir.file("tokenizer.json")));
}

TEST(BpeEncode, Gpt2ByteTableIsABijectionOntoPrintableCharacters) {
  const auto& table = gpt2_byte_to_unicode();
  EXPECT_EQ(table[' '], 0x120u);   // 'Ġ'
  EXPECT_EQ(table['\n'], 0x10Au);  // 'Ċ'
  EXPECT_EQ(table['A'], U'A');
  EXPECT_EQ(table[0xAD], 0x143u);  // the last of the 68 remapped bytes
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(gpt2_text_to_bytes(bytes_to_gpt2_text(all)), all);
  EXPECT_FALSE(gpt2_text_to_bytes("日").has_value());
}

TEST(StreamDecoder, EmitsOnlyWholeCharactersAndMatchesDecode) {
  // Byte tokens split multi-byte characters, which is what the stream decoder is for.
  const auto tok = train_bpe_tokenizer("", 256);
  const std::string text =
      "a日😀b\xFF"
      "c\xE6\x97";  // ends with a truncated character
  const std::vector<int32_t> ids = tok->encode(text);
  ASSERT_EQ(ids.size(), text.size());  // no merges: one id per byte
  StreamDecoder stream(*tok);
  std::vector<std::string> outputs;
  for (const int32_t id : ids) outputs.push_back(stream.push(id));
  const std::string rest = stream.flush();
  // 'a' at once; the 3 bytes of 日 come out with the third; 😀 with its fourth.
  EXPECT_EQ(outputs[0], "a");
  EXPECT_EQ(outputs[1], "");
  EXPECT_EQ(outputs[2], "");
  EXPECT_EQ(outputs[3], "日");
  EXPECT_EQ(outputs[7], "😀");
  EXPECT_EQ(outputs[9], "\xFF");  // can never become valid: emitted at once
  EXPECT_EQ(rest, "\xE6\x97");
  std::string joined;
  for (const std::string& s : outputs) joined += s;
  EXPECT_EQ(joined + rest, text);
}

}  // namespace
}  // namespace lnx::data
