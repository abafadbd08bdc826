// PPO (posttrain/ppo.h) on a tiny Hugging Face fixture: the adaptive KL controller against
// values worked out by hand, a run logs every metric and trains its value head, kl_coef = 0
// keeps no reference, a stopped and restarted run equals an uninterrupted one, bad configs
// are errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/directory_lock.h"
#include "io/safetensors.h"
#include "numeric.h"
#include "posttrain/grpo.h"
#include "posttrain/ppo.h"
#include "posttrain_test_util.h"
#include "tensor/ops.h"
#include "train/train_config.h"

namespace lnx::posttrain {
namespace {

namespace fs = std::filesystem;

PpoConfig tiny(const std::string& out) {
  std::vector<std::string> o = tiny_run(out);
  o.push_back("passes=2");
  return ppo_config(o);
}

TEST(Ppo, AdaptiveKlCoefficientByHand) {
  // e = clip(KL/target − 1, ±0.2); coef · (1 + e · n / horizon), n = 100, horizon = 10000.
  EXPECT_NEAR(adaptive_kl_coef(0.2, 12.0, 6.0, 10000, 100), 0.2 * (1 + 0.2 * 0.01), 1e-15);  // e = 1 → 0.2
  EXPECT_NEAR(adaptive_kl_coef(0.2, 3.0, 6.0, 10000, 100), 0.2 * (1 - 0.2 * 0.01), 1e-15);   // e = −0.5 → −0.2
  EXPECT_NEAR(adaptive_kl_coef(0.2, 6.6, 6.0, 10000, 100), 0.2 * (1 + 0.1 * 0.01), 1e-15);   // e = 0.1
  EXPECT_EQ(adaptive_kl_coef(0.2, 6.0, 6.0, 10000, 100), 0.2);
}

TEST(Ppo, LogsEveryMetricAndTrainsTheValueHead) {
  PpoConfig c = tiny(::testing::TempDir() + "lnx_ppo_metrics");
  c.kl_coef = 0.1;
  c.kl_control = "adaptive";
  c.kl_horizon = 100;
  c.reward_program = kLengthReward;
  const PpoResult r = ppo(c);
  EXPECT_EQ(r.steps, 4);
  const auto m = metric_lines(c.out_dir + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  for (const char* key : {"policy_loss", "value_loss", "reward_mean", "reward_std", "accuracy", "kl", "kl_coef",
                          "kl_penalty", "value_mean", "clip_fraction", "completion_length", "rollout_tokens_per_s",
                          "generation_share", "eval_accuracy"})
    EXPECT_TRUE(m[3].contains(key) && std::isfinite(m[3][key].get<double>())) << key;
  EXPECT_EQ(m[0]["value_mean"].get<double>(), 0.0);  // the head starts at zero
  EXPECT_NE(m[3]["value_mean"].get<double>(), 0.0);  // and has learnt since
  EXPECT_GT(m[0]["value_loss"].get<double>(), 0.0);
  // The coefficient moved by the controller's rule from its start.
  EXPECT_EQ(m[0]["kl_coef"].get<double>(), 0.1);
  double coef = 0.1;
  for (size_t i = 0; i < 3; ++i) coef = adaptive_kl_coef(coef, m[i]["kl"].get<double>(), 6.0, 100, 8);
  EXPECT_NEAR(m[3]["kl_coef"].get<double>(), coef, 1e-12);
  EXPECT_NEAR(m[1]["kl_penalty"].get<double>(), -m[1]["kl_coef"].get<double>() * m[1]["kl"].get<double>(), 1e-12);
  const TensorDict head = load_safetensors(c.out_dir + "/last/value_head.safetensors").tensors;
  EXPECT_EQ(head.at("weight").shape(), (Shape{1, 48}));
  EXPECT_TRUE(fs::exists(c.out_dir + "/last/tokenizer.json"));
}

TEST(Ppo, NoReferenceWithoutAKlPenalty) {
  PpoConfig c = tiny(::testing::TempDir() + "lnx_ppo_nokl");
  c.kl_coef = 0;
  c.steps = 2;
  ppo(c);
  for (const auto& l : metric_lines(c.out_dir + "/metrics.jsonl")) {
    EXPECT_EQ(l["kl"].get<double>(), 0.0);
    EXPECT_EQ(l["kl_penalty"].get<double>(), 0.0);
  }
}

TEST(Ppo, StoppedAndRestartedEqualsUninterrupted) {
  PpoConfig whole = tiny(::testing::TempDir() + "lnx_ppo_whole");
  whole.kl_coef = 0.1;
  whole.kl_control = "adaptive";
  whole.kl_horizon = 100;
  whole.reward_program = kLengthReward;
  const PpoResult a_result = ppo(whole);
  PpoConfig parts = whole;
  parts.out_dir = ::testing::TempDir() + "lnx_ppo_parts";
  fs::remove_all(parts.out_dir);
  PpoHooks stop_at_2;
  stop_at_2.after_step = [](int64_t step, const nlohmann::json&) { return step < 2; };
  EXPECT_EQ(ppo(parts, stop_at_2).steps, 2);
  const PpoResult resumed = ppo(parts);
  EXPECT_EQ(resumed.resumed_from, 2);
  EXPECT_EQ(resumed.kl_coef, a_result.kl_coef);
  const auto a = metric_lines(whole.out_dir + "/metrics.jsonl"), b = metric_lines(parts.out_dir + "/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    for (const char* key : {"policy_loss", "value_loss", "reward_mean", "value_mean", "kl_coef", "completion_length"})
      EXPECT_EQ(a[i][key].get<double>(), b[i][key].get<double>()) << "step " << i + 1 << " " << key;
  EXPECT_NE(a[3]["value_mean"].get<double>(), 0.0);  // the weights moved: resume restored them
  EXPECT_GT(a[3]["kl"].get<double>(), 0.0);
  EXPECT_EQ(resumed.accuracy_before, a_result.accuracy_before);  // the first run's, kept in the state
  for (const char* f : {"value_head.safetensors", "model.safetensors"}) {
    const TensorDict x = load_safetensors(whole.out_dir + "/last/" + f).tensors;
    const TensorDict y = load_safetensors(parts.out_dir + "/last/" + f).tensors;
    for (const auto& [name, t] : x) EXPECT_EQ(max(abs(sub(t, y.at(name)))).item(), 0.0) << f << " " << name;
  }
}

TEST(PosttrainConfigs, ShippedFilesLoadAndOverridesWin) {
  const std::string dir = LNX_SOURCE_DIR "/configs/posttrain/";
  const GrpoConfig g = grpo_config({"steps=7"}, dir + "addition-grpo.yaml");
  EXPECT_EQ(g.steps, 7);
  EXPECT_EQ(g.group_size, 8);
  EXPECT_EQ(g.lr, 3e-4);
  EXPECT_EQ(g.init_from, "runs/posttrain/sft/last");
  const PpoConfig p = ppo_config({}, dir + "addition-ppo.yaml");
  EXPECT_EQ(p.passes, 4);
  EXPECT_EQ(p.lam, 0.95);
  EXPECT_EQ(p.eval_prompts, 500);
  const train::TrainConfig sft = train::load_train_config(dir + "addition-sft.yaml", {});
  EXPECT_EQ(sft.data.source, "sft");
  EXPECT_EQ(sft.train.out_dir + "/last", g.init_from);
  // A file's unknown key is an error naming it and the file; a file may omit the section.
  const std::string bad = ::testing::TempDir() + "lnx_ppo_bad.yaml";
  std::ofstream(bad) << "kl_coef: 0.1\nkl_coeff: 0.2\n";
  EXPECT_NE(error_of<ValueError>([&] { ppo_config({}, bad); }).find("kl_coeff"), std::string::npos);
  std::ofstream(bad) << "kl_coef: 0.1\n";
  EXPECT_EQ(ppo_config({}, bad).kl_coef, 0.1);
}

TEST(Ppo, BadConfigsAreErrors) {
  EXPECT_NE(error_of<ValueError>([] { ppo(ppo_config({})); }).find("[ppo] init_from is required"), std::string::npos);
  PpoConfig c = tiny(::testing::TempDir() + "lnx_ppo_bad");
  c.kl_control = "pid";
  EXPECT_NE(error_of<ValueError>([&] { ppo(c); }).find("fixed or adaptive"), std::string::npos);
  c.kl_control = "fixed";
  c.lam = 1.5;
  EXPECT_NE(error_of<ValueError>([&] { ppo(c); }).find("gamma and lam"), std::string::npos);
  c.lam = 0.95;
  c.cliprange = 0;
  EXPECT_NE(error_of<ValueError>([&] { ppo(c); }).find("cliprange"), std::string::npos);
  EXPECT_NE(error_of<ValueError>([] { ppo_config({"kl_coeff=3"}); }).find("kl_coeff"), std::string::npos);
  // A directory another run holds is refused (issue 14 D4b).
  c.cliprange = 0.2;
  fs::create_directories(c.out_dir);
  {
    const io::DirectoryLock holder("grpo", c.out_dir);
    EXPECT_NE(error_of<IOError>([&] { ppo(c); }).find("is in use by process"), std::string::npos);
  }
  // A GRPO run directory is not resumed as PPO.
  c.cliprange = 0.2;
  fs::create_directories(c.out_dir + "/last");
  EXPECT_NE(error_of<ValueError>([&] { ppo(c); }).find("checkpoint of another trainer"), std::string::npos);
}

}  // namespace
}  // namespace lnx::posttrain
