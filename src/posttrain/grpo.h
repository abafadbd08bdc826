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
#include <string>
#include <vector>

#include "posttrain/run.h"

namespace lnx::posttrain {

struct GrpoConfig : RunConfig {
  double beta = 0.0;  // KL coefficient
  double eps_low = 0.2, eps_high = 0.2;
  std::string aggregation = "sequence_mean";  // sequence_mean | token_mean | constant_norm
  bool scale_rewards = true;                  // divide advantages by the group's std

  GrpoConfig() { out_dir = "runs/grpo"; }
  template <class V> void visit(V&& v) {
    RunConfig::visit(v);
    v("beta", beta, "KL(policy || start) coefficient, k3 estimator (0 = no reference model)");
    v("eps_low", eps_low, "clip range below 1");
    v("eps_high", eps_high, "clip range above 1");
    v("aggregation", aggregation, "loss aggregation: sequence_mean, token_mean, constant_norm");
    v("scale_rewards", scale_rewards, "divide advantages by the group's reward std");
  }
};

// The defaults, then a YAML file's options (config_path), then key=value overrides (run.h).
GrpoConfig grpo_config(const std::vector<std::string>& overrides, const std::string& config_path = "");

using GrpoResult = RunResult;
using GrpoHooks = RunHooks;

GrpoResult grpo(const GrpoConfig& config, const GrpoHooks& hooks = {});

}  // namespace lnx::posttrain
