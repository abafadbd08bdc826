// The losses and estimators of policy-gradient post-training (GRPO, PPO), as plain functions of
// tensors, each differentiable where a trainer differentiates it. Dimension letters: N
// completions, T completion tokens (right-padded; mask [N, T], 1 = a completion token), G
// completions per prompt (a group: G consecutive rows).
//
// Definitions (those of TRL's GRPOTrainer and PPOTrainer, and of the papers they cite):
//   ratio r = exp(logp − old_logp); surrogate = −min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A)
//   KL k3 (Schulman's estimator of KL(π ‖ π_ref)) = exp(ref − logp) − (ref − logp) − 1
//   group advantage A_i = (R_i − mean_g R) / (std_g R + 1e-4)   (std unbiased; or unscaled)
//   PPO reward r_t = −kl_coef·(logp_t − ref_logp_t) + [t = last]·score
//   GAE δ_t = r_t + γ·V_{t+1} − V_t (V past the last token = 0), A_t = δ_t + γλ·A_{t+1},
//       returns = A + V
//   whiten(x) = (x − mean) / sqrt(var + 1e-8) over the masked entries (var unbiased)
//   clipped value loss = ½·masked mean of max((V − R)², (clip(V, V_old ± ε) − R)²)
#pragma once

#include <cstdint>

#include "dist/communicator.h"
#include "tensor/tensor.h"

namespace lnx::train::rl {

// rewards [N] (N = groups · G) → advantages [N] (not differentiated).
Tensor group_advantages(const Tensor& rewards, int64_t group_size, bool scale_by_std = true);

// Per-token KL(π ‖ π_ref) estimate k3 ≥ 0: logp, ref_logp [N, T] → [N, T] (differentiable in logp).
Tensor kl_k3(const Tensor& logp, const Tensor& ref_logp);

// The clipped surrogate per token (a loss: lower is better). logp [N, T] differentiable;
// old_logp [N, T]; advantages [N] (one per completion) or [N, T].
Tensor clipped_surrogate(const Tensor& logp, const Tensor& old_logp, const Tensor& advantages, double eps_low,
                         double eps_high);

// How per-token losses [N, T] become one scalar:
//   sequence_mean  mean over each completion's tokens, then over completions (the GRPO paper)
//   token_mean     mean over every token of the batch (DAPO)
//   constant_norm  sum over tokens / (N · max_tokens) (Dr. GRPO: no length bias)
enum class Aggregation { sequence_mean, token_mean, constant_norm };
Aggregation parse_aggregation(const std::string& name);  // ValueError listing the names
Tensor aggregate(const Tensor& per_token, const Tensor& mask, Aggregation how, int64_t max_tokens);

// The share of masked tokens where the clip is active: (r < 1 − ε_low and A < 0) or
// (r > 1 + ε_high and A > 0).
double clip_fraction(const Tensor& logp, const Tensor& old_logp, const Tensor& advantages, const Tensor& mask,
                     double eps_low, double eps_high);

// rewards, values [N, T], mask [N, T] → advantages and returns [N, T] (0 at padding; not
// differentiated).
struct Gae {
  Tensor advantages, returns;
};
Gae gae(const Tensor& rewards, const Tensor& values, const Tensor& mask, double gamma, double lambda);

// PPO's per-token rewards [N, T] (Ziegler et al. 2019; TRL): −kl_coef·(logp − ref_logp) at every
// completion token (the k1 estimate of KL to the reference; none when ref_logp is undefined),
// plus scores[n] at completion n's last token (mask right-padded; an empty completion gets
// nothing). 0 at padding; not differentiated.
Tensor kl_penalized_rewards(const Tensor& logp, const Tensor& ref_logp, const Tensor& mask, const Tensor& scores,
                            double kl_coef);

// Whitening over the masked entries (shift_mean false keeps the mean); 0 at padding. With
// several ranks the mean and variance are those of every rank's masked entries together (a
// collective); moments_only: a rank with no entries takes part (x and mask undefined).
Tensor whiten(const Tensor& x, const Tensor& mask, bool shift_mean = true,
              dist::Communicator& comm = dist::Communicator::self());
void whiten_moments_only(dist::Communicator& comm);

// PPO's clipped value loss (a scalar; differentiable in values).
Tensor clipped_value_loss(const Tensor& values, const Tensor& old_values, const Tensor& returns, const Tensor& mask,
                          double eps);

// The masked mean of x [N, T] (a scalar; differentiable).
Tensor masked_mean(const Tensor& x, const Tensor& mask);

}  // namespace lnx::train::rl
