// `linearnexus generate`, `chat` and `bench generate` end to end on a briefly trained tiny model.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cli_test_util.h"

namespace lnx {
namespace {

namespace fs = std::filesystem;

class GenerateCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = ::testing::TempDir() + "lnx_gen_cli_" + std::to_string(::getpid());
    fs::remove_all(dir_);
    const CommandResult r = run_cli("train --preset hybrid-tiny --steps 30 --out " + dir_ +
                                    " data.builtin_bytes=60000 train.batch_size=4 train.seq_len=32 "
                                    "train.eval_batches=1 train.sample_tokens=0");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string ckpt() { return dir_ + "/last"; }
  static std::string dir_;
};
std::string GenerateCommand::dir_;

// stdout only (the BLAS note goes to stderr).
CommandResult run_quiet(const std::string& args, const std::string& input = "") { return run_cli(args, false, input); }

TEST_F(GenerateCommand, SeededRunsRepeatAndSavedStatesContinueExactly) {
  const std::string args = "generate --checkpoint " + ckpt() + " --prompt 'The ' --seed 5 --top-k 8";
  const CommandResult a = run_quiet(args + " --max-tokens 30"), b = run_quiet(args + " --max-tokens 30");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.output.rfind("The ", 0), 0u) << a.output;
  // 12 tokens, save the state, 18 more from it = 30 in one go.
  const std::string state = dir_ + "/state.safetensors";
  const CommandResult first = run_quiet(args + " --max-tokens 12 --state-out " + state);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const CommandResult rest =
      run_quiet("generate --checkpoint " + ckpt() + " --state-in " + state + " --seed 5 --top-k 8 --max-tokens 18");
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  auto strip = [](std::string s) {
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  };
  EXPECT_EQ(strip(first.output) + strip(rest.output), strip(a.output));
}

TEST_F(GenerateCommand, AStateIsRefusedWithAnotherTokenizer) {
  // Issue 14 D6: a copy of the checkpoint whose tokenizer.json differs (here only by a trailing
  // newline: the fingerprint is of the bytes) must not continue the state.
  const std::string state = dir_ + "/tok.state", copy = dir_ + "/other_tokenizer";
  const CommandResult first =
      run_quiet("generate --checkpoint " + ckpt() + " --prompt 'The ' --max-tokens 3 --state-out " + state);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  fs::remove_all(copy);
  fs::copy(ckpt(), copy, fs::copy_options::recursive);
  std::ofstream(copy + "/tokenizer.json", std::ios::app) << "\n";
  const CommandResult other = run_cli("generate --checkpoint " + copy + " --state-in " + state + " --max-tokens 3");
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_NE(other.output.find("made with another tokenizer"), std::string::npos) << other.output;
  const CommandResult same = run_cli("generate --checkpoint " + ckpt() + " --state-in " + state + " --max-tokens 3");
  EXPECT_EQ(same.exit_code, 0) << same.output;
}

TEST_F(GenerateCommand, AFailedSaveDoesNotEndTheChat) {
  // Issue 14 D5: /save with nothing to save, without a name, or to a path that cannot be written
  // ended the chat; now each is reported and the chat goes on to the next turn and a good save.
  const std::string state = dir_ + "/chat.state";
  fs::remove(state);
  const CommandResult c =
      run_cli("chat --checkpoint " + ckpt() + " --greedy --max-tokens 5", true,
              "/save " + state + "\nBen has\n/save\n/save /no/such/dir/x.state\n/save " + state + "\nThen\n");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  for (const char* e : {"nothing to save yet", "/save needs a file name", "/no/such/dir/x.state"})
    EXPECT_NE(c.output.find(e), std::string::npos) << e << "\n" << c.output;
  EXPECT_NE(c.output.find("saved " + state), std::string::npos) << c.output;
  EXPECT_TRUE(fs::exists(state));
}

TEST_F(GenerateCommand, ChatKeepsStateAndBadInputsFailClearly) {
  const CommandResult c = run_quiet("chat --checkpoint " + ckpt() + " --greedy --max-tokens 20", "Ben has\nThen\n");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("the state carries the whole conversation"), std::string::npos) << c.output;
  CommandResult r = run_cli("generate --checkpoint /no/such/dir --prompt x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;
  r = run_cli("generate --checkpoint " + ckpt() + " --prompt x --top-p 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("top_p"), std::string::npos) << r.output;
  r = run_cli("generate --checkpoint " + ckpt() + " --state-in " + ckpt() + "/model.safetensors");
  EXPECT_EQ(r.exit_code, 1) << r.output;
}

TEST(BenchGenerateCommand, PrintsPrefillAndDecodeRates) {
  const CommandResult r =
      run_quiet("bench generate --preset hybrid-tiny --prefill 64 --contexts 16,64 --decode-tokens 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"sgemm", "prefill 64 tokens", "ms/token", "products ms", "kernels ms"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
}

TEST(BenchGenerateCommand, OutOfRangeSizesAreErrors) {
  // Issue 14 D1: --decode-tokens 0 crashed and 1 printed inf.
  for (const auto& [args, flag] :
       std::vector<std::pair<std::string, std::string>>{{"--decode-tokens 0", "--decode-tokens"},
                                                        {"--decode-tokens 1", "--decode-tokens"},
                                                        {"--prefill 0", "--prefill"},
                                                        {"--contexts 0", "--contexts"},
                                                        {"--group -1", "--group"},
                                                        {"--group-prompt 0", "--group-prompt"}}) {
    const CommandResult r = run_cli("bench generate --preset attention-tiny " + args);
    EXPECT_EQ(r.exit_code, 1) << args << ": " << r.output;
    EXPECT_NE(r.output.find("error: [bench generate] " + flag + " must be"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace lnx
