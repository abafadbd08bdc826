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

// With several ranks each holds its share of the rollouts (whole groups: the advantages are
// local) and weighs its aggregate by its share of the global normaliser, so the summed
// gradients and the reduced statistics are one process's.
StepStats update(models::LMModel& model, const models::LMModel* reference, train::Optimizer& opt,
                 const TensorDict& params, const Rollouts& r, const GrpoConfig& c, dist::Communicator& comm,
                 dist::GradientReducer* reducer) {
  const bool distributed = comm.size() > 1, any = !r.completions.empty();
  const auto how = train::rl::parse_aggregation(c.aggregation);
  auto logprobs = [&](const models::LMModel& m) {
    return train::completion_logprobs(m, r.prompt_ids, r.completions, nullptr, c.temperature);
  };
  Tensor A, old_logp, ref_logp;
  double counts[2] = {static_cast<double>(r.completions.size()), 0};  // completions, completion tokens
  if (any) {
    const Tensor rewards = from_vector(r.rewards, {static_cast<int64_t>(r.rewards.size())});
    A = to_dtype(train::rl::group_advantages(rewards, c.group_size, c.scale_rewards), model.dtype());
    NoGradGuard no_grad;
    const train::CompletionLogprobs old = logprobs(model);
    old_logp = old.logp;
    counts[1] = sum(old.mask).item();
    if (reference) ref_logp = logprobs(*reference).logp;
  }
  double weight = 1, token_weight = 1;  // this rank's share of the aggregate and of token means
  if (distributed) {
    double total[2] = {counts[0], counts[1]};
    comm.allreduce_sum(total, 2, "the all-reduce of the rollout counts");
    weight = how == train::rl::Aggregation::token_mean ? counts[1] / std::max(1.0, total[1])
                                                       : counts[0] / std::max(1.0, total[0]);
    token_weight = counts[1] / std::max(1.0, total[1]);
  }
  StepStats s;
  const double share = 1.0 / static_cast<double>(c.passes);
  for (int64_t pass = 0; pass < c.passes; ++pass) {
    double stats[3] = {0, 0, 0};  // loss, kl, clip fraction (this rank's weighted part)
    Tensor loss;
    if (any) {
      const train::CompletionLogprobs cur = logprobs(model);
      Tensor per_token = train::rl::clipped_surrogate(cur.logp, old_logp, A, c.eps_low, c.eps_high);
      if (reference) {
        const Tensor kl = train::rl::kl_k3(cur.logp, ref_logp);
        per_token = add(per_token, mul(kl, c.beta));
        stats[1] = token_weight * train::rl::masked_mean(kl, cur.mask).item();
      }
      loss = train::rl::aggregate(per_token, cur.mask, how, c.max_new_tokens);
      stats[0] = weight * loss.item();
      stats[2] = token_weight * train::rl::clip_fraction(cur.logp, old_logp, A, cur.mask, c.eps_low, c.eps_high);
      if (distributed) loss = mul(loss, weight);
    }
    if (distributed) comm.allreduce_sum(stats, 3, "the all-reduce of the step statistics");
    s.loss += share * stats[0];
    s.kl += share * stats[1];
    s.clip_fraction += share * stats[2];
    optimise(loss, params, opt, c.clip, reducer);
  }
  return s;
}

}  // namespace

GrpoResult grpo(const GrpoConfig& c, const GrpoHooks& hooks) {
  validate(c);
  dist::Communicator& comm = dist::Communicator::world();
  return dist::run_or_abort(comm, [&] {
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
      const Rollouts r = roll_out(model, *run.tokenizer, *run.task, c, step, comm);
      const StepStats s = update(model, reference.get(), *opt, params, r, c, comm, run.reducer.get());
      nlohmann::json line = r.metrics(std::chrono::duration<double>(Clock::now() - t0).count(), comm);
      line.update({{"step", step + 1}, {"loss", s.loss}, {"kl", s.kl}, {"clip_fraction", s.clip_fraction}});
      const bool stop =
          run.end_step(step + 1, line, hooks, [&] { run.save(*opt, step + 1, nlohmann::json::object()); });
      result.steps = step + 1;
      if (stop) break;
    }
    result.accuracy_after = held_out_accuracy(model, *run.tokenizer, *run.task, c, comm);
    return result;
  });
}

}  // namespace lnx::posttrain
