// Data parallelism end to end, under mpirun: `linearnexus train` on 2 and 3 ranks (3 deals an
// uneven split of the batch rows) gives the losses of one process on the same global batch, for
// each optimizer with and without ZeRO-1; a checkpoint written by 2 ranks resumes on 1 and 3;
// a rank that dies, hangs or fails ends the run with a clear error instead of a hang.
#ifdef LNX_TEST_MPI

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace lnx {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code = 0;
  std::string output;
  double seconds = 0;
};

Outcome shell(const std::string& command) {
  Outcome r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed", 0};
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// `ranks` processes of program; one thread each, so that three ranks fit a two-core machine.
std::string mpirun(int ranks, const std::string& program) {
  return fmt::format(
      "OMP_NUM_THREADS=1 {} {} --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none -x "
      "OMP_NUM_THREADS -np {} {}",
      LNX_MPIEXEC, ::geteuid() == 0 ? "--allow-run-as-root" : "", ranks, program);
}

std::string dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "lnx_dp_" + name;
  fs::remove_all(d);
  return d;
}

// A small run of the default hybrid model (Gated DeltaNet and attention): 5 rows per batch,
// split 3 + 2 on two ranks and 2 + 2 + 1 on three.
std::string train_args(const std::string& out, const std::string& extra) {
  return fmt::format(
      "train --config {}/configs/hybrid-tiny.yaml train.steps=6 train.batch_size=5 train.seq_len=32 "
      "train.eval_every=3 train.eval_batches=3 train.save_every=0 train.log_every=0 train.sample_tokens=0 "
      "data.builtin_bytes=20000 schedule.warmup_steps=2 train.bucket_mb=0.05 train.out_dir={} {}",
      LNX_SOURCE_DIR, out, extra);
}

// (step, loss) and (step, val_loss) records of a run's metrics.jsonl.
struct Metrics {
  std::vector<std::pair<int64_t, double>> loss, val_loss;
};
Metrics read_metrics(const std::string& out) {
  Metrics m;
  std::ifstream f(out + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("loss")) m.loss.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
    if (j.contains("val_loss")) m.val_loss.emplace_back(j["step"].get<int64_t>(), j["val_loss"].get<double>());
  }
  return m;
}

void expect_same_losses(const std::vector<std::pair<int64_t, double>>& got,
                        const std::vector<std::pair<int64_t, double>>& want, double rtol = 1e-6) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_NEAR(got[i].second, want[i].second, rtol * std::abs(want[i].second)) << "step " << want[i].first;
  }
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// One process, then 2 and 3 ranks, each with and without ZeRO-1 (or as `variants` says).
void check_against_one_process(const std::string& name, const std::string& extra,
                               const std::vector<std::pair<int, int>>& variants) {
  const std::string one = dir(name + "_1");
  const Outcome ref = shell(fmt::format("OMP_NUM_THREADS=1 {} {}", LNX_CLI_PATH, train_args(one, extra)));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  const Metrics want = read_metrics(one);
  ASSERT_EQ(want.loss.size(), 6u);
  for (const auto& [ranks, zero] : variants) {
    SCOPED_TRACE(fmt::format("{} ranks, zero_stage {}", ranks, zero));
    const std::string out = dir(fmt::format("{}_{}_{}", name, ranks, zero));
    const Outcome r = shell(mpirun(
        ranks, fmt::format("{} {}", LNX_CLI_PATH, train_args(out, extra + fmt::format(" train.zero_stage={}", zero)))));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(count(r.output, "trained 6 steps"), 1u) << "only rank 0 reports:\n" << r.output;
    EXPECT_NE(r.output.find(fmt::format("{} ranks × 1 threads", ranks)), std::string::npos) << r.output;
    const Metrics got = read_metrics(out);
    expect_same_losses(got.loss, want.loss);
    expect_same_losses(got.val_loss, want.val_loss);
  }
}

TEST(DataParallel, AdamWOnTwoAndThreeRanksEqualsOneProcess) {
  check_against_one_process("adamw", "", {{2, 0}, {3, 0}, {2, 1}, {3, 1}});
}

TEST(DataParallel, MuonAndSophiaShardedEqualOneProcess) {
  // Muon's matrices are owned whole by one rank each; Sophia's Hessian batch is sharded too.
  check_against_one_process("muon", "optimizer.name=muon train.grad_accum=2", {{3, 1}, {2, 0}});
  check_against_one_process("sophia", "optimizer.name=sophia optimizer.hessian_interval=2", {{2, 1}});
}

TEST(DataParallel, PackedSftBatchesEqualOneProcess) {
  const std::string data = ::testing::TempDir() + "lnx_dp_sft.jsonl";
  {
    std::ofstream f(data);
    for (int i = 0; i < 40; ++i)
      f << nlohmann::json{{"prompt", fmt::format("add {} and {}: ", i, i % 7)},
                          {"completion", fmt::format("{} {}", i + i % 7, std::string(static_cast<size_t>(i % 5), 'x'))}}
               .dump()
        << "\n";
  }
  check_against_one_process("sft", "data.source=sft data.path=" + data + " train.seq_len=48", {{2, 1}, {3, 0}});
}

TEST(DataParallel, ACheckpointOfTwoRanksResumesOnOneAndThree) {
  const std::string extra = "schedule.total_steps=6 train.steps=3 train.zero_stage=1";
  const std::string whole = dir("resume_whole");
  ASSERT_EQ(shell(fmt::format("OMP_NUM_THREADS=1 {} {}", LNX_CLI_PATH, train_args(whole, "schedule.total_steps=6")))
                .exit_code,
            0);
  const Metrics want = read_metrics(whole);
  const std::string half = dir("resume_half");
  const Outcome first = shell(mpirun(2, fmt::format("{} {}", LNX_CLI_PATH, train_args(half, extra))));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  // The sharded optimizer state was gathered: the same tensors as one process writes.
  const SafetensorsFile one = load_safetensors(whole + "/last/optimizer.safetensors");
  const SafetensorsFile two = load_safetensors(half + "/last/optimizer.safetensors");
  ASSERT_EQ(one.tensors.size(), two.tensors.size());
  for (const auto& [name, t] : one.tensors) EXPECT_TRUE(two.tensors.contains(name)) << name;
  for (int ranks : {1, 3}) {
    SCOPED_TRACE(fmt::format("resumed on {} ranks", ranks));
    const std::string out = dir(fmt::format("resume_{}", ranks));
    fs::copy(half, out, fs::copy_options::recursive);
    const std::string args =
        fmt::format("{} {}", LNX_CLI_PATH, train_args(out, "schedule.total_steps=6 train.zero_stage=1"));
    const Outcome r = ranks == 1 ? shell("OMP_NUM_THREADS=1 " + args) : shell(mpirun(ranks, args));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("resuming at step 3"), std::string::npos) << r.output;
    expect_same_losses(read_metrics(out).loss, want.loss);
  }
}

std::vector<nlohmann::json> metric_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::ifstream f(out + "/metrics.jsonl");
  for (std::string l; std::getline(f, l);) v.push_back(nlohmann::json::parse(l));
  return v;
}

struct Tolerance {
  const char* key;
  double rtol, atol;
};

// A post-training run (grpo or ppo) on 1, 2 and 3 ranks: 5 prompts a step, dealt 3 + 2 and
// 2 + 2 + 1, with rewards that vary from the first step. The samples (so rewards and
// accuracies) are one process's; losses and KL are f32 sums over other batch shapes, compared
// at the resolution of their terms (the GRPO loss is a sum of ±advantage terms that cancel to
// ~1e-8).
void check_posttrain(const std::string& trainer, const std::string& options, const std::vector<Tolerance>& tolerances) {
  const std::string reward = ::testing::TempDir() + "lnx_dp_length_reward.sh";
  std::ofstream(reward) << "awk '{ print length($0) / 100 }'\n";
  auto args = [&](const std::string& out) {
    return fmt::format(
        "{} --init-from {}/tests/fixtures/hf/llama --steps 4 prompts_per_step=5 group_size=4 max_new_tokens=4 "
        "digits=1 eval_prompts=7 eval_every=2 save_every=0 lr=1e-3 'reward_program=sh {}' {} --out {}",
        trainer, LNX_SOURCE_DIR, reward, options, out);
  };
  const std::string one = dir(trainer + "_1");
  const Outcome ref = shell(fmt::format("OMP_NUM_THREADS=1 {} {}", LNX_CLI_PATH, args(one)));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  const std::vector<nlohmann::json> want = metric_lines(one);
  ASSERT_EQ(want.size(), 4u);
  for (int ranks : {2, 3}) {
    SCOPED_TRACE(fmt::format("{} ranks", ranks));
    const std::string out = dir(fmt::format("{}_{}", trainer, ranks));
    const Outcome r = shell(mpirun(ranks, fmt::format("{} {}", LNX_CLI_PATH, args(out))));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(count(r.output, "held-out accuracy (greedy)"), 1u) << "only rank 0 reports:\n" << r.output;
    const std::vector<nlohmann::json> got = metric_lines(out);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
      for (const Tolerance& t : tolerances) {
        ASSERT_TRUE(want[i].contains(t.key) || std::string(t.key) == "eval_accuracy") << t.key;
        if (!want[i].contains(t.key)) continue;
        const double a = got[i].at(t.key).get<double>(), b = want[i].at(t.key).get<double>();
        EXPECT_NEAR(a, b, t.rtol * std::abs(b) + t.atol) << t.key << " at step " << i + 1;
      }
  }
}

const std::vector<Tolerance> kRolloutTolerances = {{"reward_mean", 1e-9, 1e-12},
                                                   {"reward_std", 1e-9, 1e-12},
                                                   {"accuracy", 0, 1e-12},
                                                   {"completion_length", 0, 1e-12},
                                                   {"eval_accuracy", 0, 1e-12}};

TEST(DataParallel, GrpoOnTwoAndThreeRanksEqualsOneProcess) {
  std::vector<Tolerance> t = kRolloutTolerances;
  t.insert(t.end(), {{"loss", 0, 1e-6}, {"kl", 1e-5, 1e-9}, {"clip_fraction", 0, 1e-9}});
  check_posttrain("grpo", "beta=0.05", t);
  // Token-mean aggregation, and more ranks than prompts (one rank rolls out nothing) and than
  // held-out prompts.
  check_posttrain("grpo", "beta=0.05 aggregation=token_mean prompts_per_step=2 eval_prompts=2", t);
}

TEST(DataParallel, PpoOnTwoAndThreeRanksEqualsOneProcess) {
  // Whitening and token means over every rank's tokens; the value head is reduced too.
  std::vector<Tolerance> t = kRolloutTolerances;
  t.insert(t.end(), {{"policy_loss", 1e-4, 1e-6},
                     {"value_loss", 1e-4, 1e-7},
                     {"kl", 1e-5, 1e-9},
                     {"value_mean", 1e-4, 1e-7},
                     {"clip_fraction", 0, 1e-9}});
  check_posttrain("ppo", "kl_coef=0.05 kl_control=adaptive whiten_rewards=true", t);
}

TEST(DataParallel, ABatchSmallerThanTheRanksIsRefused) {
  const Outcome r =
      shell(mpirun(2, fmt::format("{} {}", LNX_CLI_PATH, train_args(dir("small_batch"), "train.batch_size=1"))));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("train.batch_size 1 is smaller than the 2 ranks"), std::string::npos) << r.output;
}

TEST(DataParallel, ARankThatDiesEndsTheRun) {
  const Outcome r = shell(mpirun(2, fmt::format("{} die {}", LNX_FAULT_DRIVER, dir("die"))));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(r.seconds, 60) << r.output;
}

TEST(DataParallel, ARankThatHangsMakesTheOthersStopAtTheTimeout) {
  const Outcome r = shell(mpirun(2, fmt::format("{} hang {}", LNX_FAULT_DRIVER, dir("hang"))));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("error: rank 0 of 2: [dist] the all-reduce of the stop request did not complete within 3 s"),
            std::string::npos)
      << r.output;
  EXPECT_LT(r.seconds, 60) << r.output;
}

TEST(DataParallel, AnErrorOnOneRankEndsEveryRank) {
  const Outcome r = shell(mpirun(2, fmt::format("{} throw {}", LNX_FAULT_DRIVER, dir("throw"))));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("error: rank 1 of 2: injected failure"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 60) << r.output;
}

}  // namespace
}  // namespace lnx

#endif  // LNX_TEST_MPI
