// GRPO (Group Relative Policy Optimization; Shao et al. 2024, DeepSeekMath) on a verifiable
// task (data/tasks.h). Each step: prompts_per_step task prompts; group_size completions of each,
// sampled with the prompt prefilled once and its state repeated (generate_groups); rewards from
// the task; group-normalised advantages; `passes` updates of the clipped surrogate (ε_low,
// ε_high) aggregated per sequence or per token, plus β·KL k3 to the frozen starting model
// (β = 0: no reference model is kept). Every step is a pure function of (seed, step) and the
// weights, so a killed run restarted from out_dir/last continues with the same rewards and
// losses. Metrics per step in out_dir/metrics.jsonl: reward mean/std, task accuracy, KL, clip
// fraction, completion length, rollout tokens/s, the share of the step spent generating; greedy
// accuracy on held-out prompts every eval_every steps.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/optim.h"

namespace lnx::posttrain {

struct GrpoConfig {
  std::string init_from;  // the model to train: a checkpoint or Hugging Face directory
  std::string out_dir = "runs/grpo";
  std::string task = "addition";
  int64_t digits = 2, count = 4;  // the task's options
  int64_t steps = 50, prompts_per_step = 4, group_size = 8, max_new_tokens = 8;
  double temperature = 1.0;
  double beta = 0.0;  // KL coefficient
  double eps_low = 0.2, eps_high = 0.2;
  int64_t passes = 1;
  std::string aggregation = "sequence_mean";  // sequence_mean | token_mean | constant_norm
  bool scale_rewards = true;                  // divide advantages by the group's std
  double format_bonus = 0.0;
  std::string reward_program;  // a command giving the rewards instead of the task (reward_program.h)
  double reward_timeout = 60;
  double lr = 1e-4, clip = 1.0;
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
    v("beta", beta, "KL(policy || start) coefficient, k3 estimator (0 = no reference model)");
    v("eps_low", eps_low, "clip range below 1");
    v("eps_high", eps_high, "clip range above 1");
    v("passes", passes, "updates per batch of rollouts");
    v("aggregation", aggregation, "loss aggregation: sequence_mean, token_mean, constant_norm");
    v("scale_rewards", scale_rewards, "divide advantages by the group's reward std");
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
  }
};

// key=value overrides over the defaults (ValueError naming a bad key or value).
GrpoConfig grpo_config(const std::vector<std::string>& overrides);

struct GrpoResult {
  int64_t steps = 0, resumed_from = -1;
  double accuracy_before = 0, accuracy_after = 0;  // greedy, held-out prompts
};

struct GrpoHooks {
  std::function<bool(int64_t step)> after_step;  // false: stop after saving
};

GrpoResult grpo(const GrpoConfig& config, const GrpoHooks& hooks = {});

}  // namespace lnx::posttrain
