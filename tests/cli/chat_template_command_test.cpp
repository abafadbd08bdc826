// `linearnexus chat` and `generate` on a model directory with a chat template and eos ids: the
// tiny qwen2 model of tests/fixtures/hf/qwen2 with the ChatML tokenizer, tokenizer_config.json
// and generation_config.json of tests/fixtures/tokenizers/chat_model. The model is random, so
// the tests check the mechanics against the library run by hand with the same seeded sampling
// (the model's greedy choice is one token over and over): each turn the conversation is
// rendered through the template and only the new text is fed; a reply ends at an eos id (one
// the model is known to sample), which is not printed; generate stops there too.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "data/unicode.h"
#include "generate/session.h"
#include "models/checkpoint.h"

namespace lnx {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxTokens = 16;
constexpr uint64_t kSeed = 7;
const std::string kSampling = " --temperature 1 --seed 7 --max-tokens 16";

class ChatTemplateCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "lnx_chat_template_cli_" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string src = LNX_SOURCE_DIR "/tests/fixtures/";
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(src + "hf/qwen2/" + f, dir_ + "/" + f);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
      fs::copy_file(src + "tokenizers/chat_model/" + f, dir_ + "/" + f);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static void write(const std::string& name, const nlohmann::json& j) { std::ofstream(dir_ + "/" + name) << j.dump(); }

  static generate::SamplingOptions sampled(std::vector<int32_t> stops) {
    generate::SamplingOptions o;
    o.temperature = 1;
    o.seed = kSeed;
    o.max_new_tokens = kMaxTokens;
    o.stop_tokens = std::move(stops);
    return o;
  }

  // A stop token the model samples for `prompt` ids: the first of its tokens after the
  // first one that differs from all before it (or the first token); with as_text, one whose
  // text is valid UTF-8 on its own (it becomes eos_token in tokenizer_config.json).
  static int32_t produced_stop(const models::LMModel& model, const data::Tokenizer& tok,
                               const std::vector<int32_t>& prompt, bool as_text) {
    generate::Session s(model);
    s.prefill(prompt);
    const std::vector<int32_t> g = s.generate(sampled({}));
    const auto usable = [&](int32_t t) { return !as_text || data::is_valid_utf8(tok.decode({t})); };
    for (size_t k = 1; k < g.size(); ++k) {
      const auto before = g.begin() + static_cast<ptrdiff_t>(k);
      if (std::find(g.begin(), before, g[k]) == before && usable(g[k])) return g[k];
    }
    EXPECT_TRUE(usable(g[0])) << "the sampled tokens have no usable stop token";
    return g[0];
  }

  static std::string dir_;
};
std::string ChatTemplateCommand::dir_;

// A reply as the command prints it: a newline follows unless the text ends with one.
std::string line_of(const std::string& text) { return text.empty() || text.back() != '\n' ? text + "\n" : text; }

std::vector<int32_t> without_stop(std::vector<int32_t> tokens, int32_t stop) {
  if (!tokens.empty() && tokens.back() == stop) tokens.pop_back();
  return tokens;
}

TEST_F(ChatTemplateCommand, RendersEachTurnFeedsOnlyTheNewTextAndStopsAtTheEosId) {
  auto model = models::load_model(dir_);
  auto tok = data::load_tokenizer(dir_ + "/tokenizer.json");
  // A ChatML template whose assistant turns end with eos_token, and an eos id the model
  // samples: the eos token's text is what the session has consumed after a reply.
  const std::string chat_template =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
      "{% if m.role == 'assistant' %}{{ eos_token }}{% else %}<|im_end|>{% endif %}{{ '\\n' }}{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  const std::string first = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n";
  const int32_t stop = produced_stop(*model, *tok, tok->encode(first), true);
  write("generation_config.json", {{"eos_token_id", stop}});
  write("tokenizer_config.json", {{"eos_token", tok->decode({stop})}, {"chat_template", chat_template}});

  // What the command should do, by hand: prefill the first rendering, generate to the stop,
  // feed the second rendering's new text token by token, generate again.
  generate::Session s(*model);
  s.prefill(tok->encode(first));
  const std::vector<int32_t> reply1 = s.generate(sampled({stop}));
  ASSERT_EQ(reply1.back(), stop);  // the reply ended at the eos id
  const std::string text1 = tok->decode(without_stop(reply1, stop));
  const std::string fed2 = "\n<|im_start|>user\nAgain<|im_end|>\n<|im_start|>assistant\n";
  for (const int32_t t : tok->encode(fed2)) s.step(t);
  const std::string text2 = tok->decode(without_stop(s.generate(sampled({stop})), stop));

  const CommandResult r = run_cli("chat --checkpoint " + dir_ + " --show-prompt" + kSampling, false, "Hello\nAgain\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("through the chat template of"), std::string::npos) << r.output;
  const std::string expected = "> fed: " + nlohmann::json(first).dump() + "\n" + line_of(text1) +
                               "> fed: " + nlohmann::json(fed2).dump() + "\n" + line_of(text2) + "> ";
  ASSERT_GE(r.output.size(), expected.size()) << r.output;
  EXPECT_EQ(r.output.substr(r.output.size() - expected.size()), expected) << r.output;
}

TEST_F(ChatTemplateCommand, TheFixtureChatmlTemplateRunsTurnsAndGenerateStopsAtEos) {
  auto model = models::load_model(dir_);
  auto tok = data::load_tokenizer(dir_ + "/tokenizer.json");
  for (const char* f : {"tokenizer_config.json", "generation_config.json"})
    fs::copy_file(LNX_SOURCE_DIR "/tests/fixtures/tokenizers/chat_model/" + std::string(f), dir_ + "/" + f,
                  fs::copy_options::overwrite_existing);
  const data::ChatFormat format = data::load_chat_format(dir_, tok.get());
  const int32_t im_end = *tok->special_token("<|im_end|>");
  EXPECT_EQ(format.stop_ids, (std::vector<int32_t>{im_end, *tok->special_token("<|endoftext|>")}));
  EXPECT_EQ(format.render({{"user", "Hi"}}, true), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");

  const CommandResult chat = run_cli("chat --checkpoint " + dir_ + " --greedy --max-tokens 8 --system 'Be brief.'",
                                     false, "Hello\nAgain\n/reset\nOnce more\n");
  ASSERT_EQ(chat.exit_code, 0) << chat.output;
  EXPECT_EQ(chat.output.find("<|im_end|>"), std::string::npos) << chat.output;  // stop tokens are not printed

  // generate: the prompt, then the sampled tokens up to the first eos id.
  const std::string prompt = "Hello there";
  const int32_t stop = produced_stop(*model, *tok, tok->encode_with_special_tokens(prompt), false);
  write("generation_config.json", {{"eos_token_id", {stop}}});
  generate::Session s(*model);
  s.prefill(tok->encode_with_special_tokens(prompt));
  const std::vector<int32_t> g = s.generate(sampled({stop}));
  const CommandResult r = run_cli("generate --checkpoint " + dir_ + " --prompt '" + prompt + "'" + kSampling, false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, prompt + tok->decode(without_stop(g, stop)) + "\n");

  // Without the template, chat is the plain line loop; --system then needs a template.
  const CommandResult plain = run_cli("chat --checkpoint " + dir_ + " --no-template --max-tokens 4", false, "Hi\n");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(plain.output.find("chat template"), std::string::npos) << plain.output;
  const CommandResult bad = run_cli("chat --checkpoint " + dir_ + " --no-template --system x", true, "Hi\n");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--system needs a chat template"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace lnx
