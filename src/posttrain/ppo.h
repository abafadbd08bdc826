// PPO (Schulman et al. 2017) for language models as in Ziegler et al. 2019 and TRL's
// PPOTrainer, on a verifiable task or a reward program (posttrain/run.h). Each step: rollouts
// (prompt prefilled once, its state forked group_size times); per-token rewards
//   r_t = −kl_coef · (log π(c_t) − log π_ref(c_t))  (+ the task's reward at the last token);
// values from a value head on the policy's shared trunk; GAE (γ, λ) → advantages (whitened) and
// returns; `passes` updates of the clipped policy loss + vf_coef · the clipped value loss.
//
// The value head sits on the shared trunk (a Linear [D → 1] on the final hidden states), not in
// a separate value model: on a CPU a second model would double every forward and backward of
// the update, and the trunk's features already encode the prompt and the answer so far. The
// head is saved with the run (last/value_head.safetensors); the policy checkpoint stays a
// plain language model.
//
// The KL coefficient is fixed or adaptive (Ziegler et al.: kl_coef ← kl_coef · (1 + e·n/H),
// e = clip(KL/target − 1, ±0.2), n the step's completions, H kl_horizon); it is part of the run's
// state, so a restarted run continues exactly. kl_coef = 0 keeps no reference model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "posttrain/run.h"

namespace lnx::posttrain {

struct PpoConfig : RunConfig {
  double kl_coef = 0.05;             // TRL's default
  std::string kl_control = "fixed";  // fixed | adaptive
  double kl_target = 6.0, kl_horizon = 10000;
  double gamma = 1.0, lam = 0.95;  // GAE; TRL's defaults
  double cliprange = 0.2, cliprange_value = 0.2, vf_coef = 0.1;
  bool whiten_rewards = false;

  PpoConfig() {
    out_dir = "runs/ppo";
    passes = 4;  // TRL's num_ppo_epochs
  }
  template <class V> void visit(V&& v) {
    RunConfig::visit(v);
    v("kl_coef", kl_coef, "per-token KL penalty in the reward (0 = no reference model)");
    v("kl_control", kl_control, "fixed or adaptive KL coefficient");
    v("kl_target", kl_target, "adaptive control: target KL per completion");
    v("kl_horizon", kl_horizon, "adaptive control: horizon in completions");
    v("gamma", gamma, "GAE discount");
    v("lam", lam, "GAE lambda");
    v("cliprange", cliprange, "policy ratio clip range");
    v("cliprange_value", cliprange_value, "value clip range around the rollout's values");
    v("vf_coef", vf_coef, "value loss coefficient");
    v("whiten_rewards", whiten_rewards, "whiten the per-token rewards before GAE");
  }
};

// The defaults, then a YAML file's options (config_path), then key=value overrides (run.h).
PpoConfig ppo_config(const std::vector<std::string>& overrides, const std::string& config_path = "");

struct PpoResult : RunResult {
  double kl_coef = 0;  // at the end (adaptive control moves it)
};
using PpoHooks = RunHooks;

PpoResult ppo(const PpoConfig& config, const PpoHooks& hooks = {});

// The adaptive KL controller's update (Ziegler et al. 2019): the new coefficient after a step
// whose mean KL per completion was kl over n completions.
double adaptive_kl_coef(double coef, double kl, double target, double horizon, int64_t n);

}  // namespace lnx::posttrain
