#include "posttrain/grpo.h"

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "tensor/error.h"
#include "tensor/ops.h"
#include "train/policy.h"
#include "train/rl_losses.h"

namespace lnx::posttrain {

using Clock = std::chrono::steady_clock;

GrpoConfig grpo_config(const std::vector<std::string>& overrides, const std::string& config_path) {
  return config_from_overrides<GrpoConfig>(overrides, "grpo", config_path);
}

namespace {

void validate(const GrpoConfig& c) {
  validate_run_config(c, "grpo", 2);
  LNX_CHECK(c.beta >= 0, ValueError, "[grpo] beta >= 0 is needed, got {}", c.beta);
  train::rl::parse_aggregation(c.aggregation);
}

struct StepStats {
  double loss = 0, kl = 0, clip_fraction = 0;  // means over the passes
};

StepStats update(models::LMModel& model, const models::LMModel* reference, train::Optimizer& opt,
                 const TensorDict& params, const Rollouts& r, const GrpoConfig& c) {
  const Tensor rewards = from_vector(r.rewards, {static_cast<int64_t>(r.rewards.size())});
  const Tensor A = to_dtype(train::rl::group_advantages(rewards, c.group_size, c.scale_rewards), model.dtype());
  const auto how = train::rl::parse_aggregation(c.aggregation);
  auto logprobs = [&](const models::LMModel& m) {
    return train::completion_logprobs(m, r.prompt_ids, r.completions, nullptr, c.temperature);
  };
  Tensor old_logp, ref_logp;
  {
    NoGradGuard no_grad;
    old_logp = logprobs(model).logp;
    if (reference) ref_logp = logprobs(*reference).logp;
  }
  StepStats s;
  const double share = 1.0 / static_cast<double>(c.passes);
  for (int64_t pass = 0; pass < c.passes; ++pass) {
    const train::CompletionLogprobs cur = logprobs(model);
    Tensor per_token = train::rl::clipped_surrogate(cur.logp, old_logp, A, c.eps_low, c.eps_high);
    if (reference) {
      const Tensor kl = train::rl::kl_k3(cur.logp, ref_logp);
      per_token = add(per_token, mul(kl, c.beta));
      s.kl += share * train::rl::masked_mean(kl, cur.mask).item();
    }
    const Tensor loss = train::rl::aggregate(per_token, cur.mask, how, c.max_new_tokens);
    s.loss += share * loss.item();
    s.clip_fraction += share * train::rl::clip_fraction(cur.logp, old_logp, A, cur.mask, c.eps_low, c.eps_high);
    optimise(loss, params, opt, c.clip);
  }
  return s;
}

}  // namespace

GrpoResult grpo(const GrpoConfig& c, const GrpoHooks& hooks) {
  validate(c);
  PolicyRun run(c, "grpo");
  models::LMModel& model = *run.model;
  const std::unique_ptr<models::LMModel> reference = load_reference(c, c.beta);
  const TensorDict params = model.parameters();
  const auto opt = run.make_optimizer(params);
  GrpoResult result;
  if (run.resuming()) result.resumed_from = run.start;
  result.accuracy_before = run.accuracy_before();
  for (int64_t step = run.start; step < c.steps; ++step) {
    const auto t0 = Clock::now();
    const Rollouts r = roll_out(model, *run.tokenizer, *run.task, c, step);
    const StepStats s = update(model, reference.get(), *opt, params, r, c);
    nlohmann::json line = r.metrics(std::chrono::duration<double>(Clock::now() - t0).count());
    line.update({{"step", step + 1}, {"loss", s.loss}, {"kl", s.kl}, {"clip_fraction", s.clip_fraction}});
    const bool stop = run.end_step(step + 1, line, hooks, [&] { run.save(*opt, step + 1, nlohmann::json::object()); });
    result.steps = step + 1;
    if (stop) break;
  }
  result.accuracy_after = held_out_accuracy(model, *run.tokenizer, *run.task, c);
  return result;
}

}  // namespace lnx::posttrain
