#include "train/rl_losses.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::train::rl {

namespace {

void check_nt(const char* op, const Tensor& x, const Tensor& like, const char* name) {
  LNX_CHECK(x.defined() && x.shape() == like.shape(), ShapeError, "[{}] {} is {}, expected {}", op, name,
            x.defined() ? shape_str(x.shape()) : "undefined", shape_str(like.shape()));
}

// advantages [N] or [N, T] → [N, T] like logp.
Tensor per_token(const Tensor& advantages, const Tensor& logp, const char* op) {
  if (advantages.dim() == 1) {
    LNX_CHECK(advantages.size(0) == logp.size(0), ShapeError, "[{}] advantages are {} for {} completions", op,
              shape_str(advantages.shape()), logp.size(0));
    return expand(unsqueeze(advantages, 1), logp.shape());
  }
  check_nt(op, advantages, logp, "advantages");
  return advantages;
}

}  // namespace

Tensor group_advantages(const Tensor& rewards, int64_t G, bool scale_by_std) {
  LNX_CHECK(rewards.dim() == 1 && G >= 1 && rewards.size(0) % G == 0, ShapeError,
            "[group_advantages] rewards must be [groups · {}], got {}", G, shape_str(rewards.shape()));
  const std::vector<double> r = to_dtype(rewards.detach(), DType::f64).to_vector<double>();
  std::vector<double> a(r.size());
  for (size_t g = 0; g < r.size(); g += static_cast<size_t>(G)) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < G; ++i) mean += r[g + i] / static_cast<double>(G);
    for (int64_t i = 0; i < G; ++i) var += (r[g + i] - mean) * (r[g + i] - mean);
    const double std = G > 1 ? std::sqrt(var / static_cast<double>(G - 1)) : 0.0;
    for (int64_t i = 0; i < G; ++i) a[g + i] = scale_by_std ? (r[g + i] - mean) / (std + 1e-4) : r[g + i] - mean;
  }
  return to_dtype(from_vector(a, rewards.shape()), rewards.dtype());
}

Tensor kl_k3(const Tensor& logp, const Tensor& ref_logp) {
  check_nt("kl_k3", ref_logp, logp, "ref_logp");
  const Tensor d = sub(ref_logp.detach(), logp);
  return sub(sub(exp(d), d), 1.0);
}

Tensor clipped_surrogate(const Tensor& logp, const Tensor& old_logp, const Tensor& advantages, double eps_low,
                         double eps_high) {
  check_nt("clipped_surrogate", old_logp, logp, "old_logp");
  LNX_CHECK(eps_low >= 0 && eps_low < 1 && eps_high >= 0, ValueError,
            "[clipped_surrogate] clip range [1 − {}, 1 + {}] is not a range around 1", eps_low, eps_high);
  const Tensor A = per_token(advantages.detach(), logp, "clipped_surrogate");
  const Tensor ratio = exp(sub(logp, old_logp.detach()));
  return neg(minimum(mul(ratio, A), mul(clamp(ratio, 1.0 - eps_low, 1.0 + eps_high), A)));
}

Aggregation parse_aggregation(const std::string& name) {
  if (name == "sequence_mean") return Aggregation::sequence_mean;
  if (name == "token_mean") return Aggregation::token_mean;
  if (name == "constant_norm") return Aggregation::constant_norm;
  throw ValueError(
      fmt::format("[rl] loss aggregation '{}' is unknown (sequence_mean, token_mean, constant_norm)", name));
}

Tensor aggregate(const Tensor& x, const Tensor& mask, Aggregation how, int64_t max_tokens) {
  check_nt("aggregate", mask, x, "mask");
  const Tensor m = to_dtype(mask, x.dtype());
  const Tensor masked = mul(x, m);
  switch (how) {
    case Aggregation::sequence_mean:
      return mean(div(sum(masked, {1}), maximum(sum(m, {1}), ones({x.size(0)}, x.dtype()))));
    case Aggregation::token_mean:
      return div(sum(masked), std::max(1.0, sum(m).item()));
    case Aggregation::constant_norm:
      LNX_CHECK(max_tokens >= 1, ValueError, "[aggregate] constant_norm needs max_tokens >= 1, got {}", max_tokens);
      return div(sum(masked), static_cast<double>(x.size(0) * max_tokens));
  }
  return Tensor();
}

double clip_fraction(const Tensor& logp, const Tensor& old_logp, const Tensor& advantages, const Tensor& mask,
                     double eps_low, double eps_high) {
  const std::vector<double> lp = to_dtype(logp.detach(), DType::f64).to_vector<double>();
  const std::vector<double> old = to_dtype(old_logp.detach(), DType::f64).to_vector<double>();
  const std::vector<double> A =
      to_dtype(per_token(advantages.detach(), logp, "clip_fraction"), DType::f64).to_vector<double>();
  const std::vector<double> m = to_dtype(mask, DType::f64).to_vector<double>();
  double clipped = 0, tokens = 0;
  for (size_t i = 0; i < lp.size(); ++i) {
    if (m[i] == 0) continue;
    tokens += 1;
    const double r = std::exp(lp[i] - old[i]);
    if ((r < 1 - eps_low && A[i] < 0) || (r > 1 + eps_high && A[i] > 0)) clipped += 1;
  }
  return tokens > 0 ? clipped / tokens : 0.0;
}

Gae gae(const Tensor& rewards, const Tensor& values, const Tensor& mask, double gamma, double lambda) {
  check_nt("gae", values, rewards, "values");
  check_nt("gae", mask, rewards, "mask");
  LNX_CHECK(rewards.dim() == 2, ShapeError, "[gae] rewards must be [N, T], got {}", shape_str(rewards.shape()));
  const int64_t N = rewards.size(0), T = rewards.size(1);
  const std::vector<double> r = to_dtype(rewards.detach(), DType::f64).to_vector<double>();
  const std::vector<double> v = to_dtype(values.detach(), DType::f64).to_vector<double>();
  const std::vector<double> m = to_dtype(mask, DType::f64).to_vector<double>();
  std::vector<double> adv(r.size(), 0.0), ret(r.size(), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    double next_value = 0, next_adv = 0;  // past the last token
    for (int64_t t = T - 1; t >= 0; --t) {
      const size_t i = static_cast<size_t>(n * T + t);
      if (m[i] == 0) continue;  // padding: not a step
      const double delta = r[i] + gamma * next_value - v[i];
      adv[i] = delta + gamma * lambda * next_adv;
      ret[i] = adv[i] + v[i];
      next_value = v[i];
      next_adv = adv[i];
    }
  }
  return {to_dtype(from_vector(adv, rewards.shape()), rewards.dtype()),
          to_dtype(from_vector(ret, rewards.shape()), rewards.dtype())};
}

Tensor kl_penalized_rewards(const Tensor& logp, const Tensor& ref_logp, const Tensor& mask, const Tensor& scores,
                            double kl_coef) {
  check_nt("kl_penalized_rewards", mask, logp, "mask");
  if (ref_logp.defined()) check_nt("kl_penalized_rewards", ref_logp, logp, "ref_logp");
  LNX_CHECK(logp.dim() == 2 && scores.dim() == 1 && scores.size(0) == logp.size(0), ShapeError,
            "[kl_penalized_rewards] scores must be [{}], got {}", logp.size(0), shape_str(scores.shape()));
  const int64_t N = logp.size(0), T = logp.size(1);
  const std::vector<double> lp = to_dtype(logp.detach(), DType::f64).to_vector<double>();
  const std::vector<double> ref = ref_logp.defined() ? to_dtype(ref_logp.detach(), DType::f64).to_vector<double>() : lp;
  const std::vector<double> m = to_dtype(mask, DType::f64).to_vector<double>();
  const std::vector<double> score = to_dtype(scores.detach(), DType::f64).to_vector<double>();
  std::vector<double> out(lp.size(), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    int64_t last = -1;
    for (int64_t t = 0; t < T; ++t) {
      const size_t i = static_cast<size_t>(n * T + t);
      if (m[i] == 0) continue;
      out[i] = -kl_coef * (lp[i] - ref[i]);
      last = t;
    }
    if (last >= 0) out[static_cast<size_t>(n * T + last)] += score[static_cast<size_t>(n)];
  }
  return to_dtype(from_vector(out, logp.shape()), logp.dtype());
}

namespace {

// Count, mean and unbiased variance of the masked entries v[i] (m[i] ≠ 0) over every rank.
struct Moments {
  double n = 0, mean = 0, var = 0;
};
Moments masked_moments(const std::vector<double>& v, const std::vector<double>& m, dist::Communicator& comm) {
  Moments r;
  for (size_t i = 0; i < v.size(); ++i) r.n += m[i];
  r.n = comm.allreduce_sum(r.n, "the all-reduce of the whitening count");
  LNX_CHECK(r.n >= 2, ValueError, "[whiten] needs at least 2 masked entries, got {}", r.n);
  for (size_t i = 0; i < v.size(); ++i) r.mean += m[i] * v[i] / r.n;
  r.mean = comm.allreduce_sum(r.mean, "the all-reduce of the whitening mean");
  for (size_t i = 0; i < v.size(); ++i) r.var += m[i] * (v[i] - r.mean) * (v[i] - r.mean);
  r.var = comm.allreduce_sum(r.var, "the all-reduce of the whitening variance") / (r.n - 1);
  return r;
}

}  // namespace

Tensor whiten(const Tensor& x, const Tensor& mask, bool shift_mean, dist::Communicator& comm) {
  check_nt("whiten", mask, x, "mask");
  const std::vector<double> v = to_dtype(x.detach(), DType::f64).to_vector<double>();
  const std::vector<double> m = to_dtype(mask, DType::f64).to_vector<double>();
  const Moments mo = masked_moments(v, m, comm);
  std::vector<double> out(v.size(), 0.0);
  for (size_t i = 0; i < v.size(); ++i)
    if (m[i] != 0) out[i] = (v[i] - mo.mean) / std::sqrt(mo.var + 1e-8) + (shift_mean ? 0.0 : mo.mean);
  return to_dtype(from_vector(out, x.shape()), x.dtype());
}

void whiten_moments_only(dist::Communicator& comm) { masked_moments({}, {}, comm); }

Tensor masked_mean(const Tensor& x, const Tensor& mask) {
  check_nt("masked_mean", mask, x, "mask");
  const Tensor m = to_dtype(mask, x.dtype());
  return div(sum(mul(x, m)), std::max(1.0, sum(m).item()));
}

Tensor clipped_value_loss(const Tensor& values, const Tensor& old_values, const Tensor& returns, const Tensor& mask,
                          double eps) {
  check_nt("clipped_value_loss", old_values, values, "old_values");
  check_nt("clipped_value_loss", returns, values, "returns");
  const Tensor old = old_values.detach(), R = returns.detach();
  const Tensor clipped = add(old, clamp(sub(values, old), -eps, eps));
  return mul(masked_mean(maximum(square(sub(values, R)), square(sub(clipped, R))), mask), 0.5);
}

}  // namespace lnx::train::rl
