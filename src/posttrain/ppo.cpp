#include "posttrain/ppo.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "models/checkpoint.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "train/data_parallel.h"
#include "train/policy.h"
#include "train/rl_losses.h"

namespace lnx::posttrain {

using Clock = std::chrono::steady_clock;

PpoConfig ppo_config(const std::vector<std::string>& overrides, const std::string& config_path) {
  return config_from_overrides<PpoConfig>(overrides, "ppo", config_path);
}

double adaptive_kl_coef(double coef, double kl, double target, double horizon, int64_t n) {
  const double error = std::clamp(kl / target - 1.0, -0.2, 0.2);
  return coef * (1.0 + error * static_cast<double>(n) / horizon);
}

namespace {

void validate(const PpoConfig& c) {
  validate_run_config(c, "ppo", 1);
  LNX_CHECK(c.kl_control == "fixed" || c.kl_control == "adaptive", ValueError,
            "[ppo] kl_control must be fixed or adaptive, got '{}'", c.kl_control);
  LNX_CHECK(c.kl_coef >= 0 && c.kl_target > 0 && c.kl_horizon > 0, ValueError,
            "[ppo] kl_coef >= 0, kl_target > 0 and kl_horizon > 0 are needed (got {}, {}, {})", c.kl_coef, c.kl_target,
            c.kl_horizon);
  LNX_CHECK(c.gamma >= 0 && c.gamma <= 1 && c.lam >= 0 && c.lam <= 1, ValueError,
            "[ppo] gamma and lam must lie in [0, 1] (got {}, {})", c.gamma, c.lam);
  LNX_CHECK(c.cliprange > 0 && c.cliprange < 1 && c.cliprange_value > 0 && c.vf_coef >= 0, ValueError,
            "[ppo] 0 < cliprange < 1, cliprange_value > 0 and vf_coef >= 0 are needed (got {}, {}, {})", c.cliprange,
            c.cliprange_value, c.vf_coef);
}

struct StepStats {
  bool updated = false;                                       // false: fewer than 2 completion tokens, no update
  double policy_loss = 0, value_loss = 0, clip_fraction = 0;  // means over the passes
  double kl = 0;          // Σ_t (log π − log π_ref) per completion, mean over completions
  double kl_penalty = 0;  // −kl_coef · kl: the reward's KL part per completion
  double value_mean = 0;  // rollout values, mean over tokens
};

// With several ranks each holds its share of the rollouts; whitening uses the moments of every
// rank's tokens, and each token mean is weighted by this rank's share of the tokens, so the
// summed gradients and the reduced statistics are one process's.
StepStats update(models::LMModel& model, const modules::Linear& value_head, const models::LMModel* reference,
                 train::Optimizer& opt, const TensorDict& params, const Rollouts& r, const PpoConfig& c, double kl_coef,
                 dist::Communicator& comm, dist::GradientReducer* reducer) {
  auto logprobs = [&](const models::LMModel& m, const modules::Linear* head) {
    return train::completion_logprobs(m, r.prompt_ids, r.completions, head, c.temperature);
  };
  const bool distributed = comm.size() > 1, any = !r.completions.empty();
  StepStats s;
  train::CompletionLogprobs old;
  Tensor ref_logp;
  // Completions, their tokens, Σ KL over tokens and Σ values: this rank's, then everyone's.
  double local[4] = {static_cast<double>(r.completions.size()), 0, 0, 0};
  if (any) {
    NoGradGuard no_grad;
    old = logprobs(model, &value_head);
    if (reference) ref_logp = logprobs(*reference, nullptr).logp;
    local[1] = sum(old.mask).item();
    if (reference) local[2] = sum(mul(sub(old.logp, ref_logp), old.mask)).item();
    local[3] = sum(mul(old.values, to_dtype(old.mask, old.values.dtype()))).item();
  }
  double total[4] = {local[0], local[1], local[2], local[3]};
  if (distributed) comm.allreduce_sum(total, 4, "the all-reduce of the rollout sums");
  if (total[1] < 2) return s;  // nothing to whiten or learn from
  s.updated = true;
  s.kl = total[2] / total[0];
  s.kl_penalty = -kl_coef * s.kl;
  s.value_mean = distributed ? total[3] / total[1] : train::rl::masked_mean(old.values, old.mask).item();
  const double token_weight = local[1] / total[1];  // this rank's share of every token mean
  Tensor advantages, returns;
  if (any) {
    const Tensor scores = to_dtype(from_vector(r.rewards, {static_cast<int64_t>(r.rewards.size())}), model.dtype());
    Tensor rewards = train::rl::kl_penalized_rewards(old.logp, ref_logp, old.mask, scores, kl_coef);
    if (c.whiten_rewards) rewards = train::rl::whiten(rewards, old.mask, /*shift_mean=*/false, comm);
    const train::rl::Gae g = train::rl::gae(rewards, old.values, old.mask, c.gamma, c.lam);
    advantages = train::rl::whiten(g.advantages, old.mask, true, comm);
    returns = g.returns;
  } else {
    if (c.whiten_rewards) train::rl::whiten_moments_only(comm);
    train::rl::whiten_moments_only(comm);
  }
  const double share = 1.0 / static_cast<double>(c.passes);
  for (int64_t pass = 0; pass < c.passes; ++pass) {
    double stats[3] = {0, 0, 0};  // policy loss, value loss, clip fraction (this rank's weighted part)
    Tensor loss;
    if (any) {
      const train::CompletionLogprobs cur = logprobs(model, &value_head);
      const Tensor policy_loss =
          train::rl::aggregate(train::rl::clipped_surrogate(cur.logp, old.logp, advantages, c.cliprange, c.cliprange),
                               cur.mask, train::rl::Aggregation::token_mean, c.max_new_tokens);
      const Tensor value_loss =
          train::rl::clipped_value_loss(cur.values, old.values, returns, cur.mask, c.cliprange_value);
      loss = add(policy_loss, mul(value_loss, c.vf_coef));
      stats[0] = policy_loss.item();
      stats[1] = value_loss.item();
      stats[2] = train::rl::clip_fraction(cur.logp, old.logp, advantages, cur.mask, c.cliprange, c.cliprange);
      if (distributed) {
        loss = mul(loss, token_weight);
        for (double& x : stats) x *= token_weight;
      }
    }
    if (distributed) comm.allreduce_sum(stats, 3, "the all-reduce of the step statistics");
    s.policy_loss += share * stats[0];
    s.value_loss += share * stats[1];
    s.clip_fraction += share * stats[2];
    optimise(loss, params, opt, c.clip, reducer);
  }
  return s;
}

}  // namespace

PpoResult ppo(const PpoConfig& c, const PpoHooks& hooks) {
  validate(c);
  dist::Communicator& comm = dist::Communicator::world();
  return dist::run_or_abort(comm, [&] {
    PolicyRun run(c, "ppo");
    models::LMModel& model = *run.model;
    const std::unique_ptr<models::LMModel> reference = load_reference(c, c.kl_coef);
    // The value head starts at zero: V = 0 until the value loss has taught it.
    Generator gen(static_cast<uint64_t>(c.seed));
    modules::Linear value_head(model.config().d_model, 1, true, gen, 0.0);
    value_head.to(model.dtype());
    if (run.resuming() && comm.root()) models::load_weights(value_head, run.last_file("value_head.safetensors"));
    train::broadcast_parameters(comm, value_head.parameters());
    TensorDict params = model.parameters();
    for (const auto& [name, p] : value_head.parameters()) params.insert("value_head." + name, p);
    const auto opt = run.make_optimizer(params);
    double kl_coef = run.resuming() ? run.state.at("kl_coef").get<double>() : c.kl_coef;
    PpoResult result;
    if (run.resuming()) result.resumed_from = run.start;
    result.accuracy_before = run.accuracy_before();
    for (int64_t step = run.start; step < c.steps; ++step) {
      const auto t0 = Clock::now();
      const Rollouts r = roll_out(model, *run.tokenizer, *run.task, c, step, comm);
      const StepStats s =
          update(model, value_head, reference.get(), *opt, params, r, c, kl_coef, comm, run.reducer.get());
      nlohmann::json line = r.metrics(std::chrono::duration<double>(Clock::now() - t0).count(), comm);
      line.update({{"step", step + 1},
                   {"policy_loss", s.policy_loss},
                   {"value_loss", s.value_loss},
                   {"kl", s.kl},
                   {"kl_coef", kl_coef},
                   {"kl_penalty", s.kl_penalty},
                   {"value_mean", s.value_mean},
                   {"clip_fraction", s.clip_fraction}});
      if (c.kl_control == "adaptive" && reference && s.updated)
        kl_coef = adaptive_kl_coef(kl_coef, s.kl, c.kl_target, c.kl_horizon, c.prompts_per_step * c.group_size);
      const bool stop = run.end_step(step + 1, line, hooks, [&] {
        run.save(*opt, step + 1, {{"kl_coef", kl_coef}}, {{"value_head", value_head.parameters()}});
      });
      result.steps = step + 1;
      if (stop) break;
    }
    result.accuracy_after = held_out_accuracy(model, *run.tokenizer, *run.task, c, comm);
    result.kl_coef = kl_coef;
    return result;
  });
}

}  // namespace lnx::posttrain
