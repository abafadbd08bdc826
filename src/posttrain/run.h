// What the policy-gradient trainers (GRPO, PPO) share: the options of every run, rollouts on a
// verifiable task (or rewards from a user program), greedy accuracy on held-out prompts, and
// the run directory — out_dir/last/ (model, optimizer, the trainer's state, tokenizer files,
// replaced atomically) and out_dir/metrics.jsonl (one line per step).
//
// Dimension letters: P prompts of a step, G completions per prompt.
//
// A step's rollouts are a pure function of (seed, step) and the weights: the prompts are
// examples seed·(step·P + i) of the task's training split, and sample p·G + j draws from a
// generator seeded by (seed, step, p·G + j). A run restarted from last/ therefore continues
// with the rewards and losses an uninterrupted run has.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "core/config.h"

#include "data/tasks.h"
#include "data/tokenizer.h"
#include "dist/communicator.h"
#include "dist/gradient_reducer.h"
#include "io/directory_lock.h"
#include "io/log_file.h"
#include "models/lm_model.h"
#include "train/optim.h"
#include "train/train_config.h"

namespace lnx::posttrain {

struct RunConfig {
  std::string init_from;  // the model to train: a checkpoint or Hugging Face directory
  std::string out_dir;
  std::string task = "addition";
  int64_t digits = 2, count = 4;  // the task's options
  int64_t steps = 50, prompts_per_step = 4, group_size = 8, max_new_tokens = 8;
  double temperature = 1.0;
  int64_t passes = 1;
  double format_bonus = 0.0;
  std::string reward_program;  // a command giving the rewards instead of the task (reward_program.h)
  double reward_timeout = 60;
  double lr = 1e-4, clip = 1.0;
  double collective_timeout = 600;  // data parallelism: seconds a rank waits for the others
  int64_t eval_every = 10, eval_prompts = 64, save_every = 10, seed = 0;

  template <class V> void visit(V&& v) {
    v("init_from", init_from, "checkpoint or Hugging Face model directory to train (required)");
    v("out_dir", out_dir, "run directory: last/ checkpoint, metrics.jsonl");
    v("task", task, "verifiable task: addition, sort, recall");
    v("digits", digits, "task: digits per number");
    v("count", count, "task: numbers to sort / key-value pairs");
    v("steps", steps, "optimisation steps (each a batch of rollouts)");
    v("prompts_per_step", prompts_per_step, "prompts per step");
    v("group_size", group_size, "completions per prompt (G)");
    v("max_new_tokens", max_new_tokens, "tokens per completion at most (a newline ends one)");
    v("temperature", temperature, "sampling temperature of the rollouts");
    v("passes", passes, "optimisation passes over each batch of rollouts");
    v("format_bonus", format_bonus, "reward added for a well-formed answer");
    v("reward_program", reward_program,
      "a command reading JSON lines {prompt, completion} and writing one reward per line (\"\" = the task's)");
    v("reward_timeout", reward_timeout, "seconds the reward program may take per step");
    v("lr", lr, "AdamW learning rate (constant)");
    v("clip", clip, "global gradient-norm clip (0 = off)");
    v("eval_every", eval_every, "steps between held-out accuracy checks (0 = start and end only)");
    v("eval_prompts", eval_prompts, "held-out prompts of each check");
    v("save_every", save_every, "steps between checkpoints (0 = at the end)");
    v("seed", seed, "seed of prompts and sampling");
    v("collective_timeout", collective_timeout,
      "under mpirun: seconds a rank waits in a collective before it stops the run (a rank died or hangs); it must "
      "cover a step's rollouts, rewards and a checkpoint write");
  }
};

// A trainer's options: its defaults, then a YAML file's (config_path non-empty: a map of
// options, at the top level or under `section:`), then key=value overrides. ValueError or
// IOError naming a bad key, value or file.
template <class Config> Config config_from_overrides(const std::vector<std::string>& overrides, const char* section,
                                                     const std::string& config_path = "") {
  YAML::Node root(YAML::NodeType::Map);
  if (!config_path.empty()) {
    const YAML::Node file = core::load_yaml_file(config_path);
    LNX_CHECK(file.IsNull() || file.IsMap(), ValueError,
              "[{}] {}: a config is a map of options (or a map with a '{}' section of them)", section, config_path,
              section);
    const YAML::Node options = file.IsMap() && file[section] ? file[section] : file;
    LNX_CHECK(options.IsNull() || options.IsMap(), ValueError, "[{}] {}: '{}' must be a map of options", section,
              config_path, section);
    if (options.IsMap()) root[section] = options;
  }
  for (const auto& o : overrides) train::apply_override(root, std::string(section) + "." + o);
  Config c;
  if (root[section]) core::read_config(root[section], c, config_path.empty() ? section : config_path);
  return c;
}

struct RunResult {
  int64_t steps = 0, resumed_from = -1;
  double accuracy_before = 0, accuracy_after = 0;  // greedy, held-out prompts
};

struct RunHooks {
  // After each step (counted from 1) with its metrics line; false: stop after saving.
  std::function<bool(int64_t step, const nlohmann::json& metrics)> after_step;
};

// The checks every run's options get (ValueError naming the trainer and the option).
void validate_run_config(const RunConfig& c, const char* trainer, int64_t min_group_size);

struct Rollouts {
  std::vector<data::TaskExample> examples;        // [P]
  std::vector<std::vector<int32_t>> prompt_ids;   // [P·G], each prompt repeated G times
  std::vector<std::vector<int32_t>> completions;  // [P·G]
  std::vector<double> rewards;                    // [P·G]
  double accuracy = 0;                            // share of exactly right answers
  double tokens = 0, seconds = 0;                 // completion tokens, time spent generating
  double reward_mean() const;
  double reward_std() const;  // population std
  // reward_mean/std, accuracy, completion_length, rollout_tokens_per_s and generation_share (of
  // a step that took step_seconds), over every rank's rollouts (a collective).
  nlohmann::json metrics(double step_seconds, dist::Communicator& comm = dist::Communicator::self()) const;
};

// One step's rollouts: each prompt prefilled once and its state forked G times
// (generate::generate_groups); a newline ends a completion. With several ranks, this rank's
// share of the step's prompts (contiguous, whole groups; possibly none), sampled as one process
// would sample them. A reward_program runs on each rank with that rank's completions (it must
// exist on every machine, and score each line on its own).
Rollouts roll_out(const models::LMModel& model, const data::Tokenizer& tok, const data::VerifiableTask& task,
                  const RunConfig& c, int64_t step, dist::Communicator& comm = dist::Communicator::self());

// Greedy accuracy on eval_prompts distinct prompts of the task's held-out split (never a
// training prompt; fewer when the split has fewer). With several ranks each decodes its share.
double held_out_accuracy(const models::LMModel& model, const data::Tokenizer& tok, const data::VerifiableTask& task,
                         const RunConfig& c, dist::Communicator& comm = dist::Communicator::self());

// A run directory opened for training: the policy from out_dir/last when a previous run left a
// checkpoint there (state = its trainer state, start = its step), else from init_from; the
// metrics lines of steps after the checkpoint are dropped (a kill between the two writes).
// Data-parallel (the ranks of Communicator::world()): rank 0 alone locks, logs and saves, and
// reads last/, whose weights, state and optimizer state it broadcasts (init_from must be
// readable on every machine); `reducer` sums the gradients over ranks.
class PolicyRun {
 public:
  PolicyRun(const RunConfig& c, const char* trainer);

  bool resuming() const { return start > 0; }
  // The held-out accuracy of the starting model: measured now, or, when resuming, what the
  // first run measured (kept in the trainer's state by save).
  double accuracy_before();
  std::string last_dir() const { return config_.out_dir + "/last"; }
  // A file of last/ (e.g. the optimizer's or the value head's tensors).
  std::string last_file(const std::string& name) const { return last_dir() + "/" + name; }
  // The trainers' optimizer over params: AdamW at the constant lr without weight decay, its
  // state from last/ when resuming.
  // With several ranks it also makes `reducer` over params.
  std::unique_ptr<train::Optimizer> make_optimizer(const TensorDict& params);
  // Writes last/ atomically: the model, the optimizer, state as <trainer>_state.json and the
  // extra tensors (empty: none) as name.safetensors; tokenizer and chat files from init_from.
  void save(const train::Optimizer& opt, int64_t step, const nlohmann::json& state,
            const std::vector<std::pair<std::string, TensorDict>>& extra = {}) const;
  // The end of step `step` (counted from 1): adds the held-out accuracy to line when due (every
  // eval_every steps and at the last), asks the hook whether to stop, writes the line to
  // metrics.jsonl and calls save() when due (every save_every steps, at the last, or stopping).
  // True: stop.
  bool end_step(int64_t step, nlohmann::json line, const RunHooks& hooks, const std::function<void()>& save);

  std::unique_ptr<data::VerifiableTask> task;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::unique_ptr<models::LMModel> model;
  nlohmann::json state;  // the trainer's state from last/ ({} when starting)
  int64_t start = 0;     // the step the run starts after
  dist::Communicator& comm = dist::Communicator::world();
  std::unique_ptr<dist::GradientReducer> reducer;  // several ranks only

 private:
  RunConfig config_;
  std::string trainer_;
  std::optional<io::DirectoryLock> lock_;  // one run per directory
  double accuracy_before_ = -1;
  std::optional<io::LogFile> metrics_;
};

// One update: loss.backward(), the global gradient-norm clip (clip <= 0: none), an optimizer
// step, the gradients zeroed. With a reducer the gradients are summed over ranks first (loss may
// then be undefined: a rank with no rollouts this step adds nothing).
void optimise(const Tensor& loss, const TensorDict& params, train::Optimizer& opt, double clip,
              dist::GradientReducer* reducer = nullptr);

// A frozen copy of the starting model for a KL term, or null when the coefficient is 0 (then none
// is kept in memory).
std::unique_ptr<models::LMModel> load_reference(const RunConfig& c, double coefficient);

}  // namespace lnx::posttrain
