// `linearnexus grpo` / `ppo` / `task` end to end, including exact resume after SIGKILL: a run
// killed mid-way and restarted continues from its last checkpoint with the rewards and losses
// of an uninterrupted run.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"

namespace lnx {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

struct KillCase {
  const char* trainer;
  const char* options;
  std::vector<const char*> keys;  // metrics that must match the uninterrupted run
};

// Rewards that vary from the first step (a random model's answers are never right): each JSON
// line's length / 100, so the weights move and the restart must restore them.
std::string length_reward_program() {
  const std::string path = ::testing::TempDir() + "lnx_length_reward_" + std::to_string(::getpid()) + ".sh";
  std::ofstream(path) << "awk '{ print length($0) / 100 }'\n";
  return "sh " + path;
}

std::string fmt_args(const KillCase& k, int64_t steps) {
  return std::string(k.trainer) + " --init-from " LNX_SOURCE_DIR "/tests/fixtures/hf/llama --steps " +
         std::to_string(steps) +
         " prompts_per_step=2 group_size=4 max_new_tokens=4 digits=1 eval_prompts=4 eval_every=0 save_every=1 "
         "lr=1e-3 'reward_program=" +
         length_reward_program() + "' " + k.options;
}

void PrintTo(const KillCase& k, std::ostream* os) { *os << k.trainer << " " << k.options; }

class PosttrainKill : public ::testing::TestWithParam<KillCase> {};

TEST_P(PosttrainKill, KilledRunResumesWithTheSameRewardsAndLosses) {
  const KillCase& k = GetParam();
  const int64_t steps = 80;
  const std::string args = fmt_args(k, steps);
  const std::string base = ::testing::TempDir() + "lnx_" + k.trainer + "_kill_" + std::to_string(::getpid());
  const std::string whole = base + "_whole", killed = base + "_killed";
  fs::remove_all(whole);
  fs::remove_all(killed);
  CommandResult r = run_cli(args + " --out " + whole);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("held-out accuracy (greedy)"), std::string::npos) << r.output;

  const std::string state = killed + "/last/" + k.trainer + "_state.json";
  const int64_t at = run_and_kill(args + " --out " + killed, state, 3);
  ASSERT_GE(at, 3);
  ASSERT_LT(at, steps) << "the run finished before it could be killed";
  r = run_cli(args + " --out " + killed);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed at " + std::to_string(at)), std::string::npos) << r.output;
  const auto a = lines(whole + "/metrics.jsonl"), b = lines(killed + "/metrics.jsonl");
  ASSERT_EQ(a.size(), static_cast<size_t>(steps));
  ASSERT_EQ(b.size(), static_cast<size_t>(steps));
  EXPECT_GT(a.back()["kl"].get<double>(), 0.0);  // the weights moved
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i]["step"], a[i]["step"]);
    for (const char* key : k.keys)
      EXPECT_NEAR(b[i][key].get<double>(), a[i][key].get<double>(), 1e-6 * (1 + std::abs(a[i][key].get<double>())))
          << k.trainer << " step " << i + 1 << " " << key;
  }
  for (const auto& d : {whole, killed}) fs::remove_all(d);
}

INSTANTIATE_TEST_SUITE_P(
    Trainers, PosttrainKill,
    ::testing::Values(KillCase{"grpo", "beta=0.05 passes=2", {"loss", "reward_mean", "kl", "completion_length"}},
                      KillCase{"ppo",
                               "kl_coef=0.1 kl_control=adaptive kl_horizon=50 passes=2",
                               {"policy_loss", "value_loss", "reward_mean", "kl", "kl_coef", "completion_length"}}),
    [](const auto& info) { return std::string(info.param.trainer); });

TEST(TaskCommand, WritesSftExamplesOfEitherSplit) {
  const std::string path = ::testing::TempDir() + "lnx_task_" + std::to_string(::getpid()) + ".jsonl";
  CommandResult r = run_cli("task addition --examples 200 --digits 1 --out " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::set<std::string> train;
  for (const auto& j : lines(path)) {
    const std::string p = j["prompt"], c = j["completion"];
    const size_t plus = p.find('+');
    EXPECT_EQ(c, std::to_string(std::stoi(p.substr(0, plus)) + std::stoi(p.substr(plus + 1))) + "\n");
    train.insert(p);
  }
  EXPECT_EQ(lines(path).size(), 200u);
  r = run_cli("task addition --examples 50 --digits 1 --split held_out", false);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream held(r.output);
  int n = 0;
  for (std::string l; std::getline(held, l); ++n)
    EXPECT_EQ(train.count(nlohmann::json::parse(l)["prompt"].get<std::string>()), 0u) << l;
  EXPECT_EQ(n, 50);
  r = run_cli("task chess");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown task 'chess'"), std::string::npos) << r.output;
  fs::remove(path);
}

}  // namespace
}  // namespace lnx
