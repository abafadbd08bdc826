// `linearnexus train` / `eval` end to end, including the acceptance check of exact resume after
// SIGKILL: a run killed mid-way and restarted continues from its last checkpoint, and its
// losses equal an uninterrupted run's.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"

namespace lnx {
namespace {

namespace fs = std::filesystem;

const std::string kRunArgs =
    "train --preset hybrid3-tiny --steps 150 model.d_model=32 data.builtin_bytes=60000 train.batch_size=4 "
    "train.seq_len=32 train.save_every=5 train.eval_every=50 train.eval_batches=2 train.sample_tokens=0";

std::map<int64_t, double> losses(const std::string& metrics) {
  std::map<int64_t, double> out;
  std::ifstream f(metrics);
  std::string line;
  while (std::getline(f, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("loss")) {
      EXPECT_EQ(out.count(j["step"].get<int64_t>()), 0u) << "step logged twice: " << line;
      out[j["step"].get<int64_t>()] = j["loss"].get<double>();
    }
  }
  return out;
}

TEST(TrainCommand, KilledRunResumesWithTheSameLosses) {
  const std::string base = ::testing::TempDir() + "lnx_kill_" + std::to_string(::getpid());
  const std::string whole = base + "_whole", killed = base + "_killed";
  fs::remove_all(whole);
  fs::remove_all(killed);
  CommandResult r = run_cli(kRunArgs + " --out " + whole);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("trained 150 steps"), std::string::npos) << r.output;

  // Start the same run in the background and SIGKILL it once a checkpoint past step 10 exists.
  const int64_t at = run_and_kill(kRunArgs + " --out " + killed, killed + "/last/trainer_state.json", 10);
  ASSERT_GE(at, 10);
  ASSERT_LT(at, 150) << "the run finished before it could be killed";

  r = run_cli(kRunArgs + " --out " + killed);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming at step " + std::to_string(at)), std::string::npos) << r.output;
  const auto a = losses(whole + "/metrics.jsonl"), b = losses(killed + "/metrics.jsonl");
  ASSERT_EQ(a.size(), 150u);
  ASSERT_EQ(b.size(), 150u);
  for (const auto& [step, loss] : a) EXPECT_NEAR(b.at(step), loss, 1e-6 * std::abs(loss)) << "step " << step;

  r = run_cli("eval --checkpoint " + killed + "/last --batches 2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("perplexity"), std::string::npos) << r.output;
  for (const auto& d : {whole, killed}) fs::remove_all(d);
}

TEST(TrainCommand, AFinishedRunStartedAgainSaysSo) {
  // Issue 14 D14: it printed "last loss 0.0000, validation loss 0.0000 (100% below)".
  const std::string out = ::testing::TempDir() + "lnx_finished_" + std::to_string(::getpid());
  fs::remove_all(out);
  const std::string args =
      "train --preset attention-tiny --steps 2 data.builtin_bytes=20000 train.batch_size=2 "
      "train.seq_len=16 train.sample_tokens=0 --out " +
      out;
  CommandResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("% below it") == std::string::npos ? r.output.find("% above it") : 0, std::string::npos)
      << r.output;
  r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("already holds step 2 of 2: nothing to train"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("0.0000"), std::string::npos) << r.output;
  fs::remove_all(out);
}

TEST(TrainCommand, BadArgumentsGiveOneErrorLine) {
  CommandResult r = run_cli("train --task recall");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("error: [train] unknown --task 'recall'"), std::string::npos) << r.output;
  r = run_cli("train --data /no/such/file.txt --steps 1 --out " + ::testing::TempDir() + "lnx_bad_data");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("/no/such/file.txt"), std::string::npos) << r.output;
  r = run_cli("train optimizer.lr");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("section.key=value"), std::string::npos) << r.output;
  r = run_cli("eval --checkpoint /no/such/checkpoint");
  EXPECT_EQ(r.exit_code, 1);
  fs::remove_all(::testing::TempDir() + "lnx_bad_data");
  // Issue 14 D12: an out_dir that is a file or under a file, and a corpus too large to hold,
  // were internal errors.
  const std::string file = ::testing::TempDir() + "lnx_out_is_a_file";
  std::ofstream(file) << "x";
  for (const std::string& out : {file, file + "/run"}) {
    r = run_cli("train --preset attention-tiny --steps 1 --out " + out);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("error: [train] cannot create directory '" + out + "'"), std::string::npos) << r.output;
  }
  fs::remove(file);
  r = run_cli("train --preset attention-tiny --steps 1 data.builtin_bytes=100000000000 --out " + ::testing::TempDir() +
              "lnx_big_corpus");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("data.builtin_bytes must be"), std::string::npos) << r.output;
  fs::remove_all(::testing::TempDir() + "lnx_big_corpus");
  // Issue 14 D8: --steps 0 and --steps -5 ran 1000 steps.
  for (const char* cmd : {"train --steps 0", "train --steps -5", "grpo --steps 0", "ppo --steps -5"}) {
    r = run_cli(cmd);
    EXPECT_NE(r.exit_code, 0) << cmd;
    EXPECT_NE(r.output.find("--steps"), std::string::npos) << cmd << ": " << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  }
  // Issue 14 (CLI sweep): malformed flags exited with CLI11's codes (104–114) and no "error:".
  for (const char* cmd : {"generate --max-tokens abc", "train --no-such-flag", "generate --max-tokens 1 --max-tokens 2",
                          "train --out ''", "grpo --out ''"}) {  // an empty --out was taken as unset: runs/default
    r = run_cli(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("error: "), std::string::npos) << cmd << ": " << r.output;
  }
  EXPECT_EQ(run_cli("train --help").exit_code, 0);
  // Issue 14 (second CLI sweep): std::filesystem errors (a symlink loop, a name too long)
  // escaped as internal errors.
  const std::string loop = ::testing::TempDir() + "lnx_symlink_loop";
  fs::remove(loop);
  fs::create_symlink(loop, loop);
  for (const std::string& cmd : {"generate -p a --checkpoint " + loop, "eval --checkpoint " + loop,
                                 "generate -p a --checkpoint /tmp/" + std::string(300, 'a')}) {
    r = run_cli(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("error: "), std::string::npos) << cmd << ": " << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << cmd << ": " << r.output;
  }
  fs::remove(loop);
}

}  // namespace
}  // namespace lnx
