// GRPO (posttrain/grpo.h) on a tiny Hugging Face fixture: a run logs every metric, the KL term
// works, a run stopped and restarted continues with the same rewards and losses as one that was
// not, and bad configs are errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "numeric.h"
#include "posttrain/grpo.h"
#include "posttrain_test_util.h"
#include "tensor/ops.h"

namespace lnx::posttrain {
namespace {

namespace fs = std::filesystem;

GrpoConfig tiny(const std::string& out) { return grpo_config(tiny_run(out)); }

TEST(Grpo, LogsEveryMetricAndTheKlTerm) {
  GrpoConfig c = tiny(::testing::TempDir() + "lnx_grpo_metrics");
  c.beta = 0.1;
  c.passes = 2;
  const GrpoResult r = grpo(c);
  EXPECT_EQ(r.steps, 4);
  const auto m = metric_lines(c.out_dir + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  for (const char* key : {"loss", "reward_mean", "reward_std", "accuracy", "kl", "clip_fraction", "completion_length",
                          "rollout_tokens_per_s", "generation_share"})
    EXPECT_TRUE(m[3].contains(key) && std::isfinite(m[3][key].get<double>())) << key;
  EXPECT_TRUE(m[3].contains("eval_accuracy"));
  EXPECT_GE(m[3]["kl"].get<double>(), 0.0);  // (0 while every group's rewards are equal: no update)
  EXPECT_TRUE(fs::exists(c.out_dir + "/last/tokenizer.json"));
}

TEST(Grpo, StoppedAndRestartedEqualsUninterrupted) {
  GrpoConfig whole = tiny(::testing::TempDir() + "lnx_grpo_whole");
  whole.reward_program = kLengthReward;
  whole.beta = 0.1;
  grpo(whole);
  GrpoConfig parts = tiny(::testing::TempDir() + "lnx_grpo_parts");
  parts.reward_program = kLengthReward;
  parts.beta = 0.1;
  GrpoHooks stop_at_2;
  stop_at_2.after_step = [](int64_t step, const nlohmann::json&) { return step < 2; };
  EXPECT_EQ(grpo(parts, stop_at_2).steps, 2);
  const GrpoResult resumed = grpo(parts);
  EXPECT_EQ(resumed.resumed_from, 2);
  const auto a = metric_lines(whole.out_dir + "/metrics.jsonl"), b = metric_lines(parts.out_dir + "/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    for (const char* key : {"loss", "reward_mean", "kl", "completion_length", "clip_fraction"})
      EXPECT_EQ(a[i][key].get<double>(), b[i][key].get<double>()) << "step " << i + 1 << " " << key;
  EXPECT_GT(a[3]["kl"].get<double>(), 0.0);  // the weights moved: resume restored them
  const TensorDict x = load_safetensors(whole.out_dir + "/last/model.safetensors").tensors;
  const TensorDict y = load_safetensors(parts.out_dir + "/last/model.safetensors").tensors;
  for (const auto& [name, t] : x) EXPECT_EQ(max(abs(sub(t, y.at(name)))).item(), 0.0) << name;
}

TEST(Grpo, RewardsFromAUserProgram) {
  // Completions as long as possible earn the most: the program prints each line's length.
  GrpoConfig c = tiny(::testing::TempDir() + "lnx_grpo_program");
  c.reward_program = "awk '{ print length($0) / 100 }'";
  grpo(c);
  std::ifstream in(c.out_dir + "/metrics.jsonl");
  std::string first;
  std::getline(in, first);
  EXPECT_GT(nlohmann::json::parse(first)["reward_mean"].get<double>(), 0.2);  // every JSON line is > 20 chars
  c.reward_program = "sleep 30";
  c.reward_timeout = 0.3;
  fs::remove_all(c.out_dir);
  EXPECT_NE(error_of<ValueError>([&] { grpo(c); }).find("did not finish within 0.3 s"), std::string::npos);
}

TEST(Grpo, BadConfigsAreErrors) {
  EXPECT_NE(error_of<ValueError>([] { grpo(grpo_config({})); }).find("init_from is required"), std::string::npos);
  GrpoConfig c = tiny(::testing::TempDir() + "lnx_grpo_bad");
  c.group_size = 1;
  EXPECT_NE(error_of<ValueError>([&] { grpo(c); }).find("group_size >= 2"), std::string::npos);
  c.group_size = 100000000;  // Issue 14 (CLI sweep): unbounded, it ran out of memory
  EXPECT_NE(error_of<ValueError>([&] { grpo(c); }).find("prompts_per_step · group_size must be at most"),
            std::string::npos);
  c.group_size = 4;
  c.aggregation = "mean";
  EXPECT_NE(error_of<ValueError>([&] { grpo(c); }).find("sequence_mean"), std::string::npos);
  c.aggregation = "token_mean";
  c.task = "chess";
  EXPECT_NE(error_of<ValueError>([&] { grpo(c); }).find("unknown task 'chess'"), std::string::npos);
  EXPECT_NE(error_of<ValueError>([] { grpo_config({"group_sise=3"}); }).find("group_sise"), std::string::npos);
  // Issue 14 (CLI sweep): a config file that is a list, or whose grpo section is a scalar, was
  // accepted as an empty config.
  const std::string file = ::testing::TempDir() + "lnx_grpo_bad.yaml";
  for (const char* text : {"[1, 2]\n", "grpo: 5\n", "7\n"}) {
    std::ofstream(file) << text;
    EXPECT_NE(error_of<ValueError>([&] { grpo_config({}, file); }).find("map of options"), std::string::npos) << text;
  }
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace lnx::posttrain
