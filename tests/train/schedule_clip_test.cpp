// Learning-rate schedules at their key steps (0, end of warmup, middle, end, beyond), config
// checks and YAML round trip; global-norm clipping: the norm, the scaling, no-op below the
// limit, NaN/inf left alone, shared gradient buffers scaled once.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/config.h"
#include "optim_test_util.h"
#include "train/clip.h"
#include "train/schedule.h"

namespace lnx::train {
namespace {

using namespace lnx::train::testing;

TEST(Schedule, CosineKeySteps) {
  const ScheduleConfig s{"cosine", 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(lr_scale(s, 0), 0.1);  // 1 / warmup
  EXPECT_DOUBLE_EQ(lr_scale(s, 4), 0.5);
  EXPECT_DOUBLE_EQ(lr_scale(s, 9), 1.0);                 // last warmup step reaches the peak
  EXPECT_DOUBLE_EQ(lr_scale(s, 10), 1.0);                // decay starts at the peak
  EXPECT_NEAR(lr_scale(s, 60), 0.1 + 0.9 * 0.5, 1e-15);  // halfway: cos(π/2) = 0
  EXPECT_NEAR(lr_scale(s, 35), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25)), 1e-15);
  EXPECT_NEAR(lr_scale(s, 109), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.99)), 1e-15);
  EXPECT_DOUBLE_EQ(lr_scale(s, 110), 0.1);
  EXPECT_DOUBLE_EQ(lr_scale(s, 100000), 0.1);
}

TEST(Schedule, LinearAndConstant) {
  const ScheduleConfig lin{"linear", 4, 24, 0.0};
  EXPECT_DOUBLE_EQ(lr_scale(lin, 0), 0.25);
  EXPECT_DOUBLE_EQ(lr_scale(lin, 3), 1.0);
  EXPECT_DOUBLE_EQ(lr_scale(lin, 4), 1.0);
  EXPECT_DOUBLE_EQ(lr_scale(lin, 14), 0.5);
  EXPECT_DOUBLE_EQ(lr_scale(lin, 19), 0.25);
  EXPECT_DOUBLE_EQ(lr_scale(lin, 24), 0.0);
  EXPECT_DOUBLE_EQ(lr_scale(lin, 30), 0.0);
  const ScheduleConfig constant{"constant", 2, 10, 0.1};
  EXPECT_DOUBLE_EQ(lr_scale(constant, 0), 0.5);
  EXPECT_DOUBLE_EQ(lr_scale(constant, 1), 1.0);
  EXPECT_DOUBLE_EQ(lr_scale(constant, 5), 1.0);
  EXPECT_DOUBLE_EQ(lr_scale(constant, 50), 1.0);
  // No warmup: step 0 is the peak. Warmup ≥ total: straight to min_ratio after the warmup.
  EXPECT_DOUBLE_EQ(lr_scale(ScheduleConfig{"cosine", 0, 10, 0.2}, 0), 1.0);
  EXPECT_DOUBLE_EQ(lr_scale(ScheduleConfig{"cosine", 10, 5, 0.2}, 9), 1.0);
  EXPECT_DOUBLE_EQ(lr_scale(ScheduleConfig{"cosine", 10, 5, 0.2}, 10), 0.2);
}

TEST(Schedule, RejectsBadConfigAndSteps) {
  EXPECT_NE(error_of<ValueError>([] {
              lr_scale(ScheduleConfig{"exp", 1, 2, 0.1}, 0);
            }).find("got 'exp'"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] {
              lr_scale(ScheduleConfig{"cosine", -1, 2, 0.1}, 0);
            }).find("warmup_steps"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] {
              lr_scale(ScheduleConfig{"cosine", 1, 2, 1.5}, 0);
            }).find("min_ratio"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] { lr_scale(ScheduleConfig{}, -1); }).find("step must be"), std::string::npos);
}

TEST(Configs, YamlRoundTrip) {
  ScheduleConfig s;
  core::read_config(core::parse_yaml("kind: linear\nwarmup_steps: 7\nmin_ratio: 0.25\n", "s.yaml"), s, "s.yaml");
  EXPECT_EQ(s.kind, "linear");
  EXPECT_EQ(s.warmup_steps, 7);
  EXPECT_EQ(s.total_steps, 1000);
  EXPECT_DOUBLE_EQ(s.min_ratio, 0.25);
  OptimizerConfig o;
  o.name = "sophia";
  o.rho = 0.05;
  o.nesterov = false;
  OptimizerConfig back;
  core::read_config(core::write_config(o), back, "opt");
  EXPECT_EQ(back.name, "sophia");
  EXPECT_DOUBLE_EQ(back.rho, 0.05);
  EXPECT_FALSE(back.nesterov);
  EXPECT_NE(error_of<ValueError>([] {
              OptimizerConfig c;
              core::read_config(core::parse_yaml("learning_rate: 1\n", "o.yaml"), c, "o.yaml");
            }).find("unknown key 'learning_rate'"),
            std::string::npos);
}

TEST(ClipGradNorm, NormAndScaling) {
  Tensor a = leaf({0, 0, 0, 0}, {2, 2});
  Tensor b = leaf({0, 0}, {2}, DType::f32);
  Tensor no_grad = leaf({1}, {1});
  give_grad(a, {3, 0, 0, 4});
  give_grad(b, {0, 12});
  const TensorDict params{{"a", a}, {"b", b}, {"none", no_grad}};
  EXPECT_DOUBLE_EQ(grad_norm(params), 13.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 6.5), 13.0);  // returned before clipping
  expect_values(a.grad(), {1.5, 0, 0, 2}, 1e-15, "a scaled by 1/2");
  expect_values(b.grad(), {0, 6}, 1e-6, "b scaled by 1/2");
  EXPECT_NEAR(grad_norm(params), 6.5, 1e-6);
  EXPECT_FALSE(no_grad.grad().defined());

  // Below (or at) the limit nothing changes, the same gradient tensors stay.
  const auto* impl = a.grad().impl();
  EXPECT_NEAR(clip_grad_norm(params, 100.0), 6.5, 1e-6);
  EXPECT_EQ(a.grad().impl(), impl);
  expect_values(a.grad(), {1.5, 0, 0, 2}, 0, "a unchanged");
  EXPECT_THROW(clip_grad_norm(params, 0.0), ValueError);
}

TEST(ClipGradNorm, NonFiniteNormLeftAlone) {
  Tensor a = leaf({0, 0}, {2});
  Tensor b = leaf({0, 0}, {2});
  give_grad(a, {NAN, 1});
  give_grad(b, {1, 1});
  const TensorDict params{{"a", a}, {"b", b}};
  EXPECT_TRUE(std::isnan(clip_grad_norm(params, 1.0)));
  expect_values(b.grad(), {1, 1}, 0, "b untouched by a NaN norm");
  give_grad(a, {INFINITY, 1});
  EXPECT_TRUE(std::isinf(clip_grad_norm(params, 1.0)));
  expect_values(b.grad(), {1, 1}, 0, "b untouched by an infinite norm");
}

TEST(ClipGradNorm, SharedGradientBufferScaledOnce) {
  // Backward may hand two leaves the very same gradient tensor; each must be scaled once.
  Tensor a = leaf({0, 0}, {2});
  Tensor b = leaf({0, 0}, {2});
  const Tensor shared = tensor_of({3, 4}, {2}, DType::f64);
  a.set_grad(shared);
  b.set_grad(shared);
  const TensorDict params{{"a", a}, {"b", b}};
  EXPECT_NEAR(clip_grad_norm(params, 1.0), std::sqrt(50.0), 1e-14);
  const double k = 1.0 / std::sqrt(50.0);
  expect_values(a.grad(), {3 * k, 4 * k}, 1e-15, "a");
  expect_values(b.grad(), {3 * k, 4 * k}, 1e-15, "b");
  expect_values(shared, {3, 4}, 0, "the shared buffer itself");
}

}  // namespace
}  // namespace lnx::train
