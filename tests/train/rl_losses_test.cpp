// The post-training losses (train/rl_losses.h) against values worked out by hand on small
// tensors: group advantages, KL k3 and its gradient, the clipped surrogate in its four cases
// (and its gradient, zero where the clip is active), the three aggregations, the clip fraction,
// GAE, PPO's KL-penalised rewards, whitening and PPO's clipped value loss.
#include <gtest/gtest.h>

#include <cmath>

#include "numeric.h"
#include "tensor/ops.h"
#include "train/rl_losses.h"

namespace lnx::train::rl {
namespace {

Tensor t2(std::initializer_list<double> v, int64_t rows) {
  return from_list(v, {rows, static_cast<int64_t>(v.size()) / rows}, DType::f64);
}

void expect_values(const Tensor& x, const std::vector<double>& want, double tol = 1e-9) {
  const std::vector<double> got = to_dtype(x, DType::f64).to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "entry " << i;
}

TEST(RlLosses, GroupAdvantagesNormaliseEachGroup) {
  const Tensor r = from_list({1, 0, 0, 1, 2, 2, 2, 2}, {8}, DType::f64);
  // Group 1: mean 0.5, unbiased std sqrt(1/3); group 2: all equal → 0.
  const double a = 0.5 / (std::sqrt(1.0 / 3.0) + 1e-4);
  expect_values(group_advantages(r, 4), {a, -a, -a, a, 0, 0, 0, 0});
  expect_values(group_advantages(r, 4, false), {0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0});
  EXPECT_NE(error_of<ShapeError>([&] { group_advantages(r, 3); }).find("groups · 3"), std::string::npos);
}

TEST(RlLosses, KlK3AndItsGradient) {
  Tensor logp = t2({std::log(0.5), std::log(0.25)}, 1);
  logp.set_requires_grad();
  const Tensor ref = t2({std::log(0.25), std::log(0.25)}, 1);
  const Tensor k = kl_k3(logp, ref);
  // d = ref − logp = log ½: e^d − d − 1 = ½ + log 2 − 1; equal distributions give 0.
  expect_values(k, {0.5 + std::log(2.0) - 1, 0.0});
  sum(k).backward();
  expect_values(logp.grad(), {1 - 0.5, 0.0});  // ∂/∂logp = 1 − e^d
}

TEST(RlLosses, ClippedSurrogateInItsFourCases) {
  // ratio 1.5 and 0.5 against advantages +2 and −2, ε = 0.2.
  Tensor logp = t2({std::log(1.5), std::log(1.5), std::log(0.5), std::log(0.5)}, 1);
  logp.set_requires_grad();
  const Tensor old = zeros({1, 4}, DType::f64);
  const Tensor A = t2({2, -2, -2, 2}, 1);
  const Tensor loss = clipped_surrogate(logp, old, A, 0.2, 0.2);
  // −min(r·A, clip(r)·A): 1.5/+2 → −2.4 (clipped); 1.5/−2 → 3 (not); 0.5/−2 → 1.6 (clipped);
  // 0.5/+2 → −1 (not).
  expect_values(loss, {-2.4, 3.0, 1.6, -1.0});
  sum(loss).backward();
  expect_values(logp.grad(), {0.0, 3.0, 0.0, -1.0});  // −A·r where the clip is inactive
  EXPECT_DOUBLE_EQ(clip_fraction(logp, old, A, ones({1, 4}, DType::f64), 0.2, 0.2), 0.5);
  // Per-completion advantages broadcast over the tokens.
  expect_values(clipped_surrogate(logp, old, from_list({2}, {1}, DType::f64), 0.2, 0.2), {-2.4, -2.4, -1.0, -1.0});
}

TEST(RlLosses, Aggregations) {
  const Tensor x = t2({1, 2, 3, 4, 9, 9}, 2), mask = t2({1, 1, 1, 1, 0, 0}, 2);
  EXPECT_NEAR(aggregate(x, mask, Aggregation::sequence_mean, 5).item(), (2.0 + 4.0) / 2, 1e-12);
  EXPECT_NEAR(aggregate(x, mask, Aggregation::token_mean, 5).item(), 10.0 / 4, 1e-12);
  EXPECT_NEAR(aggregate(x, mask, Aggregation::constant_norm, 5).item(), 10.0 / (2 * 5), 1e-12);
  EXPECT_NEAR(masked_mean(x, mask).item(), 2.5, 1e-12);
  EXPECT_EQ(parse_aggregation("token_mean"), Aggregation::token_mean);
  EXPECT_NE(error_of<ValueError>([] { parse_aggregation("mean"); }).find("sequence_mean"), std::string::npos);
}

TEST(RlLosses, GeneralisedAdvantageEstimation) {
  // Row 0: rewards [0, 0, 1], values [0.5, 0.6, 0.7]; row 1: one token of reward 2 then padding.
  const Tensor r = t2({0, 0, 1, 2, 0, 0}, 2), v = t2({0.5, 0.6, 0.7, 0.5, 0, 0}, 2), m = t2({1, 1, 1, 1, 0, 0}, 2);
  Gae g = gae(r, v, m, 1.0, 0.95);
  // δ = [0.1, 0.1, 0.3]; A2 = 0.3, A1 = 0.1 + 0.95·0.3, A0 = 0.1 + 0.95·A1.
  const double a1 = 0.1 + 0.95 * 0.3, a0 = 0.1 + 0.95 * a1;
  expect_values(g.advantages, {a0, a1, 0.3, 1.5, 0, 0});
  expect_values(g.returns, {a0 + 0.5, a1 + 0.6, 1.0, 2.0, 0, 0});
  g = gae(r, v, m, 0.9, 0.5);
  // δ = [0.9·0.6 − 0.5, 0.9·0.7 − 0.6, 0.3]; A = δ + 0.45·A_next.
  const double b1 = 0.03 + 0.45 * 0.3, b0 = 0.04 + 0.45 * b1;
  expect_values(g.advantages, {b0, b1, 0.3, 1.5, 0, 0});
}

TEST(RlLosses, KlPenalizedRewards) {
  // Row 0: three tokens, score 1 at the last; row 1: one token then padding, score −2; row 2: empty.
  const Tensor logp = t2({-1.0, -2.0, -0.5, -3.0, 9, 9, 0, 0, 0}, 3);
  const Tensor ref = t2({-1.5, -1.0, -0.5, -2.0, 9, 9, 0, 0, 0}, 3);
  const Tensor mask = t2({1, 1, 1, 1, 0, 0, 0, 0, 0}, 3);
  const Tensor scores = from_list({1.0, -2.0, 5.0}, {3}, DType::f64);
  // −0.1·(logp − ref): [−0.05, 0.1, 0], [0.1]
  expect_values(kl_penalized_rewards(logp, ref, mask, scores, 0.1), {-0.05, 0.1, 1.0, -1.9, 0, 0, 0, 0, 0});
  // No reference: the scores alone.
  expect_values(kl_penalized_rewards(logp, Tensor(), mask, scores, 0.1), {0, 0, 1.0, -2.0, 0, 0, 0, 0, 0});
  EXPECT_NE(error_of<ShapeError>([&] {
              kl_penalized_rewards(logp, ref, mask, from_list({1.0}, {1}, DType::f64), 0.1);
            }).find("scores must be [3]"),
            std::string::npos);
}

TEST(RlLosses, WhiteningOverTheMask) {
  const Tensor x = t2({1, 2, 3, 4, 100, 100}, 2), m = t2({1, 1, 1, 1, 0, 0}, 2);
  const double s = std::sqrt(5.0 / 3.0 + 1e-8);  // unbiased variance of 1..4
  expect_values(whiten(x, m), {-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, 0, 0});
  expect_values(whiten(x, m, false), {2.5 - 1.5 / s, 2.5 - 0.5 / s, 2.5 + 0.5 / s, 2.5 + 1.5 / s, 0, 0});
}

TEST(RlLosses, ClippedValueLoss) {
  Tensor v = t2({1.5, 1.1}, 2);
  v.set_requires_grad();
  const Tensor old = t2({1.0, 1.0}, 2), R = t2({2.0, 2.0}, 2), m = ones({2, 1}, DType::f64);
  // Row 0: clipped to 1.2: max(0.25, 0.64) = 0.64; row 1: inside the range: 0.81.
  const Tensor loss = clipped_value_loss(v, old, R, m, 0.2);
  EXPECT_NEAR(loss.item(), 0.5 * (0.64 + 0.81) / 2, 1e-12);
  loss.backward();
  expect_values(v.grad(), {0.0, 0.5 * 2 * (1.1 - 2.0) / 2});
}

}  // namespace
}  // namespace lnx::train::rl
