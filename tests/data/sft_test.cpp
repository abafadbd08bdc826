// Supervised fine-tuning data (data/sft.h): which tokens are scored for prompt/completion and
// for chat-template conversations, the errors naming file and line, and the packed batches
// (cu_seqlens, targets, determinism, epochs).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "data/sft.h"
#include "numeric.h"

namespace lnx::data {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "lnx_sft_" + name;
  std::ofstream(path) << text;
  return path;
}

// The text of an example's scored tokens.
std::string scored_text(const Tokenizer& tok, const SftExample& e) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < e.ids.size(); ++i)
    if (e.scored[i]) ids.push_back(e.ids[i]);
  return tok.decode(ids);
}

const char* kChatMl =
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

TEST(Sft, PromptCompletionScoresTheCompletionAndEos) {
  auto tok = train_char_tokenizer("abcdefghijklmnopqrstuvwxyz 0123456789+=", {"<eos>"});
  const int32_t eos = tok->encode("<eos>")[0];
  const auto ex = load_sft_examples(write("pc.jsonl",
                                          "{\"prompt\": \"2+3=\", \"completion\": \"5\"}\n\n"
                                          "{\"prompt\": \"ab\", \"completion\": \"cd\"}\n"),
                                    *tok, nullptr, eos);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].ids, (std::vector<int32_t>{tok->encode("2+3=5")[0], tok->encode("+")[0], tok->encode("3")[0],
                                             tok->encode("=")[0], tok->encode("5")[0], eos}));
  EXPECT_EQ(ex[0].scored, (std::vector<uint8_t>{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(scored_text(*tok, ex[1]), "cd<eos>");
}

TEST(Sft, MessagesScoreTheAssistantTurnsThroughTheTemplate) {
  auto tok = train_char_tokenizer(std::string(kChatMl) + "<>|_ abcdefghijklmnopqrstuvwxyz!?", {});
  ChatFormat chat;
  chat.chat_template.emplace(kChatMl);
  const auto ex = load_sft_examples(
      write("msg.jsonl",
            R"({"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},)"
            R"( {"role": "assistant", "content": "hello"}, {"role": "user", "content": "why?"},)"
            R"( {"role": "assistant", "content": "because"}]})"
            "\n"),
      *tok, &chat, -1);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(scored_text(*tok, ex[0]), "hello<|im_end|>\nbecause<|im_end|>\n");
  EXPECT_EQ(
      tok->decode(ex[0].ids),
      chat.render(
          {{"system", "be brief"}, {"user", "hi"}, {"assistant", "hello"}, {"user", "why?"}, {"assistant", "because"}},
          false));
}

TEST(Sft, BadFilesNameTheLine) {
  auto tok = train_char_tokenizer("abc{}\":, ", {});
  auto error = [&](const std::string& text) {
    return error_of<Error>([&] { load_sft_examples(write("bad.jsonl", text), *tok, nullptr, -1); });
  };
  EXPECT_NE(error("{\"prompt\": \"a\", \"completion\": \"b\"}\n{oops\n").find("bad.jsonl line 2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(error("{\"text\": \"a\"}\n").find("expected {\"prompt\", \"completion\"}"), std::string::npos);
  EXPECT_NE(error("{\"prompt\": \"a\", \"completion\": 3}\n").find("\"completion\" must be a string"),
            std::string::npos);
  EXPECT_NE(error("{\"prompt\": \"a\", \"completion\": \"\"}\n").find("no token to learn"), std::string::npos);
  EXPECT_NE(error("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n").find("needs a chat template"),
            std::string::npos);
  EXPECT_NE(error("").find("holds no examples"), std::string::npos);
  EXPECT_NE(error_of<IOError>([&] { load_sft_examples("/nonexistent.jsonl", *tok, nullptr, -1); }).find("cannot read"),
            std::string::npos);
}

TEST(Sft, BatchesPackExamplesWithBoundariesAndRepeat) {
  std::vector<SftExample> ex;
  for (int i = 0; i < 7; ++i) {
    SftExample e;
    for (int t = 0; t < 3 + i; ++t) {
      e.ids.push_back(100 * i + t);
      e.scored.push_back(t >= 2 ? 1 : 0);
    }
    ex.push_back(e);
  }
  SftSource a(ex, 16, 6, 5), b(ex, 16, 6, 5);
  std::multiset<int64_t> firsts;
  int64_t k = 0;
  for (; k < a.batches_per_epoch(); ++k) {
    const Batch x = a.batch(k), y = b.batch(k);
    EXPECT_TRUE(all_close(x.ids, y.ids, 0, 0));  // a pure function of (seed, k)
    const std::vector<int64_t> ids = x.ids.to_vector<int64_t>(), tg = x.targets.to_vector<int64_t>();
    const std::vector<int64_t> cu = x.cu_seqlens.to_vector<int64_t>();
    EXPECT_LE(cu.back(), 16);
    EXPECT_EQ(cu.back(), x.ids.size(1));
    for (size_t s = 0; s + 1 < cu.size(); ++s) {
      const int64_t len = cu[s + 1] - cu[s];
      EXPECT_LE(len, 6);  // truncated to max_len
      firsts.insert(ids[cu[s]] / 100);
      for (int64_t t = 0; t < len; ++t) {
        const int64_t want = t + 1 < len && t + 1 >= 2 ? ids[cu[s] + t + 1] : -100;
        EXPECT_EQ(tg[cu[s] + t], want) << "sequence " << s << " token " << t;
      }
    }
  }
  EXPECT_EQ(firsts, (std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6}));  // an epoch holds every example once
  EXPECT_EQ(a.batch(k).index, k);                                    // and the next one starts over
}

}  // namespace
}  // namespace lnx::data
