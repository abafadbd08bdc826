#include "posttrain/ppo.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "io/safetensors.h"
#include "tensor/error.h"
#include "tensor/ops.h"
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
  double policy_loss = 0, value_loss = 0, clip_fraction = 0;
  double kl = 0;          // Σ_t (log π − log π_ref) per completion, mean over completions
  double kl_penalty = 0;  // −kl_coef · kl: the reward's KL part per completion
  double value_mean = 0;  // rollout values, mean over tokens
};

// Per-token rewards [N, T]: −kl_coef · (logp − ref_logp), plus the completion's reward at its last
// token. Also returns the mean KL sum per completion.
Tensor token_rewards(const Rollouts& r, const Tensor& logp, const Tensor& ref_logp, double kl_coef, DType dtype,
                     double* kl_per_completion) {
  const int64_t N = logp.size(0), T = logp.size(1);
  const std::vector<double> lp = to_dtype(logp, DType::f64).to_vector<double>();
  const std::vector<double> ref =
      ref_logp.defined() ? to_dtype(ref_logp, DType::f64).to_vector<double>() : std::vector<double>(lp.size(), 0.0);
  std::vector<double> out(lp.size(), 0.0);
  double kl_sum = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t len = static_cast<int64_t>(r.completions[static_cast<size_t>(n)].size());
    for (int64_t t = 0; t < len; ++t) {
      const size_t i = static_cast<size_t>(n * T + t);
      const double kl = ref_logp.defined() ? lp[i] - ref[i] : 0.0;
      kl_sum += kl;
      out[i] = -kl_coef * kl;
    }
    if (len > 0) out[static_cast<size_t>(n * T + len - 1)] += r.rewards[static_cast<size_t>(n)];
  }
  *kl_per_completion = kl_sum / static_cast<double>(N);
  return to_dtype(from_vector(out, {N, T}), dtype);
}

StepStats update(models::LMModel& model, const modules::Linear& value_head, const models::LMModel* reference,
                 train::Optimizer& opt, const TensorDict& params, const Rollouts& r, const PpoConfig& c,
                 double kl_coef) {
  StepStats s;
  train::CompletionLogprobs old;
  Tensor ref_logp;
  {
    NoGradGuard no_grad;
    old = train::completion_logprobs(model, r.prompt_ids, r.completions, &value_head);
    if (reference) ref_logp = train::completion_logprobs(*reference, r.prompt_ids, r.completions).logp;
  }
  const double tokens = sum(old.mask).item();
  if (tokens < 2) return s;  // nothing to whiten or learn from (every completion empty or one token)
  Tensor rewards = token_rewards(r, old.logp, ref_logp, kl_coef, model.dtype(), &s.kl);
  s.kl_penalty = -kl_coef * s.kl;
  s.value_mean = train::rl::masked_mean(old.values, old.mask).item();
  if (c.whiten_rewards) rewards = train::rl::whiten(rewards, old.mask, /*shift_mean=*/false);
  const train::rl::Gae g = train::rl::gae(rewards, old.values, old.mask, c.gamma, c.lam);
  const Tensor advantages = train::rl::whiten(g.advantages, old.mask);
  for (int64_t pass = 0; pass < c.passes; ++pass) {
    const train::CompletionLogprobs cur = train::completion_logprobs(model, r.prompt_ids, r.completions, &value_head);
    const Tensor policy_loss =
        train::rl::aggregate(train::rl::clipped_surrogate(cur.logp, old.logp, advantages, c.cliprange, c.cliprange),
                             cur.mask, train::rl::Aggregation::token_mean, c.max_new_tokens);
    const Tensor value_loss =
        train::rl::clipped_value_loss(cur.values, old.values, g.returns, cur.mask, c.cliprange_value);
    const Tensor loss = add(policy_loss, mul(value_loss, c.vf_coef));
    s.policy_loss = policy_loss.item();
    s.value_loss = value_loss.item();
    s.clip_fraction = train::rl::clip_fraction(cur.logp, old.logp, advantages, cur.mask, c.cliprange, c.cliprange);
    optimise(loss, params, opt, c.clip);
  }
  return s;
}

}  // namespace

PpoResult ppo(const PpoConfig& c, const PpoHooks& hooks) {
  validate(c);
  PolicyRun run(c, "ppo");
  models::LMModel& model = *run.model;
  const std::unique_ptr<models::LMModel> reference = load_reference(c, c.kl_coef);
  // The value head starts at zero: V = 0 until the value loss has taught it.
  Generator gen(static_cast<uint64_t>(c.seed));
  modules::Linear value_head(model.config().d_model, 1, true, gen, 0.0);
  value_head.to(model.dtype());
  if (run.resuming()) {
    const TensorDict saved = load_safetensors(run.last_file("value_head.safetensors")).tensors;
    value_head.for_each_parameter([&](const std::string& name, Tensor& p) {
      LNX_CHECK(saved.contains(name) && saved.at(name).shape() == p.shape(), ValueError,
                "[ppo] {} has no value head '{}' of shape {}", run.last_file("value_head.safetensors"), name,
                shape_str(p.shape()));
      p = to_dtype(saved.at(name), p.dtype());
    });
  }
  TensorDict params = model.parameters();
  for (const auto& [name, p] : value_head.parameters()) params.insert("value_head." + name, p);
  const auto opt = run.make_optimizer(params);
  double kl_coef = run.resuming() ? run.state.at("kl_coef").get<double>() : c.kl_coef;
  PpoResult result;
  if (run.resuming()) result.resumed_from = run.start;
  result.accuracy_before = held_out_accuracy(model, *run.tokenizer, *run.task, c);
  for (int64_t step = run.start; step < c.steps; ++step) {
    const auto t0 = Clock::now();
    const Rollouts r = roll_out(model, *run.tokenizer, *run.task, c, step);
    const StepStats s = update(model, value_head, reference.get(), *opt, params, r, c, kl_coef);
    nlohmann::json line = r.metrics(std::chrono::duration<double>(Clock::now() - t0).count());
    line.update({{"step", step + 1},
                 {"policy_loss", s.policy_loss},
                 {"value_loss", s.value_loss},
                 {"kl", s.kl},
                 {"kl_coef", kl_coef},
                 {"kl_penalty", s.kl_penalty},
                 {"value_mean", s.value_mean},
                 {"clip_fraction", s.clip_fraction}});
    if (c.kl_control == "adaptive" && reference)
      kl_coef = adaptive_kl_coef(kl_coef, s.kl, c.kl_target, c.kl_horizon, static_cast<int64_t>(r.rewards.size()));
    const bool stop = run.end_step(step + 1, line, hooks, [&] {
      run.save(*opt, step + 1, {{"kl_coef", kl_coef}}, {{"value_head", value_head.parameters()}});
    });
    result.steps = step + 1;
    if (stop) break;
  }
  result.accuracy_after = held_out_accuracy(model, *run.tokenizer, *run.task, c);
  result.kl_coef = kl_coef;
  return result;
}

}  // namespace lnx::posttrain
