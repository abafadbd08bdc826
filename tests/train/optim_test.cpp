// The first one or two updates of AdamW, SGD, Sophia-G and Muon against numbers written from
// the formulas (tiny tensors, f64 and f32), the parameter routing, weight decay on matrices
// only, and that updates land in the parameters' own storage without autodiff history.
#include <gtest/gtest.h>

#include <cmath>

#include "optim_test_util.h"
#include "train/optim.h"

namespace lnx::train {
namespace {

using namespace lnx::train::testing;

constexpr double kEps = 1e-8;

// AdamW, one element, step t (1-based), from the formulas of optim_adamw.cpp.
struct AdamScalar {
  double m = 0, v = 0;
  double step(double w, double g, int t, double lr, double wd, bool decay, double b1 = 0.9, double b2 = 0.95) {
    if (decay) w *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
    return w - lr * mhat / (std::sqrt(vhat) + kEps);
  }
};

class AdamWByHand : public ::testing::TestWithParam<DType> {};

TEST_P(AdamWByHand, FirstTwoSteps) {
  const DType dt = GetParam();
  const double tol = dt == DType::f64 ? 1e-12 : 1e-6;
  Tensor w = leaf({1.0, -2.0, 0.5, 3.0}, {2, 2}, dt);
  Tensor b = leaf({0.5, -1.0}, {2}, dt);
  TensorDict params{{"blocks.0.w", w}, {"blocks.0.b", b}};
  OptimizerConfig c;
  c.lr = 0.1;
  c.weight_decay = 0.5;
  auto opt = make_optimizer(c, params);
  EXPECT_EQ(opt->name(), "adamw");

  // Step 1, lr = 0.1 × 0.5: the bias-corrected ratio is g / (|g| + eps) ≈ sign(g), and only
  // the matrix shrinks by 1 − 0.05 · 0.5 = 0.975.
  give_grad(w, {0.1, -0.2, 0.3, 0.4});
  give_grad(b, {1.0, -0.5});
  opt->step(0.5);
  expect_values(w,
                {1.0 * 0.975 - 0.05 * 0.1 / (0.1 + kEps), -2.0 * 0.975 + 0.05 * 0.2 / (0.2 + kEps),
                 0.5 * 0.975 - 0.05 * 0.3 / (0.3 + kEps), 3.0 * 0.975 - 0.05 * 0.4 / (0.4 + kEps)},
                tol, "w after step 1");
  expect_values(b, {0.5 - 0.05 * 1.0 / (1.0 + kEps), -1.0 + 0.05 * 0.5 / (0.5 + kEps)}, tol, "b after step 1");

  // Step 2 with new grads, lr = 0.1: checked against the scalar formula.
  const std::vector<double> w0 = {1.0, -2.0, 0.5, 3.0}, gw1 = {0.1, -0.2, 0.3, 0.4}, gw2 = {-0.3, 0.1, 0.2, 0.0};
  const std::vector<double> b0 = {0.5, -1.0}, gb1 = {1.0, -0.5}, gb2 = {0.25, 2.0};
  give_grad(w, gw2);
  give_grad(b, gb2);
  opt->step(1.0);
  std::vector<double> ew, eb;
  for (size_t i = 0; i < 4; ++i) {
    AdamScalar s;
    const double w1 = s.step(w0[i], gw1[i], 1, 0.05, 0.5, true);
    ew.push_back(s.step(w1, gw2[i], 2, 0.1, 0.5, true));
  }
  for (size_t i = 0; i < 2; ++i) {
    AdamScalar s;
    const double b1 = s.step(b0[i], gb1[i], 1, 0.05, 0.5, false);
    eb.push_back(s.step(b1, gb2[i], 2, 0.1, 0.5, false));
  }
  expect_values(w, ew, tol, "w after step 2");
  expect_values(b, eb, tol, "b after step 2");
  EXPECT_EQ(opt->steps_taken(), 2);
  // Step 2 by hand for w[0]: m = 0.09·0.1·… spelled out once to pin the scalar formula itself.
  const double m2 = 0.9 * 0.01 + 0.1 * -0.3, v2 = 0.95 * 0.05 * 0.01 + 0.05 * 0.09;
  const double w1_0 = 0.975 - 0.05 * 0.1 / (0.1 + kEps);
  EXPECT_NEAR(values(w)[0], w1_0 * 0.95 - 0.1 * (m2 / 0.19) / (std::sqrt(v2 / (1 - 0.9025)) + kEps), tol);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AdamWByHand, ::testing::Values(DType::f64, DType::f32));

TEST(SgdByHand, NesterovAndPlainMomentum) {
  for (bool nesterov : {true, false}) {
    Tensor w = leaf({1.0, 2.0}, {1, 2});
    Tensor b = leaf({-1.0}, {1});
    OptimizerConfig c = config_named("sgd");
    c.lr = 0.1;
    c.momentum = 0.9;
    c.weight_decay = 0.5;
    c.nesterov = nesterov;
    auto opt = make_optimizer(c, TensorDict{{"w", w}, {"b", b}});
    give_grad(w, {0.5, -1.0});
    give_grad(b, {2.0});
    opt->step(1.0);
    // buf = g; update = g + 0.9 g = 1.9 g (Nesterov) or g; matrix decay 1 − 0.1·0.5 = 0.95.
    const double k1 = nesterov ? 1.9 : 1.0;
    expect_values(w, {0.95 - 0.1 * k1 * 0.5, 1.9 + 0.1 * k1 * 1.0}, 1e-14, "w step 1");
    expect_values(b, {-1.0 - 0.1 * k1 * 2.0}, 1e-14, "b step 1");
    give_grad(w, {1.0, 1.0});
    give_grad(b, {-1.0});
    opt->step(0.5);  // lr 0.05; buf = 0.9 g1 + g2
    auto upd = [&](double g1, double g2) {
      const double buf = 0.9 * g1 + g2;
      return nesterov ? g2 + 0.9 * buf : buf;
    };
    const double w0 = 0.95 - 0.1 * k1 * 0.5, w1 = 1.9 + 0.1 * k1;
    expect_values(w, {w0 * 0.975 - 0.05 * upd(0.5, 1.0), w1 * 0.975 - 0.05 * upd(-1.0, 1.0)}, 1e-14, "w step 2");
    expect_values(b, {-1.0 - 0.1 * k1 * 2.0 - 0.05 * upd(2.0, -1.0)}, 1e-14, "b step 2");
  }
}

TEST(SophiaByHand, HessianThenClippedStep) {
  Tensor w = leaf({1.0, -1.0, 2.0}, {3, 1});
  Tensor d = leaf({0.5}, {1});
  TensorDict params{{"w", w}, {"d", d}};
  OptimizerConfig c = config_named("sophia");
  c.lr = 0.1;
  c.weight_decay = 0.5;
  c.hessian_interval = 3;
  auto opt = make_optimizer(c, params);
  EXPECT_TRUE(opt->wants_hessian(0));
  EXPECT_FALSE(opt->wants_hessian(1));
  EXPECT_FALSE(opt->wants_hessian(2));
  EXPECT_TRUE(opt->wants_hessian(3));
  EXPECT_TRUE(opt->wants_hessian(6));

  // h = (1 − 0.95) · B · ĝ² with B = 4 → 0.2 ĝ²; γ h = 0.008 ĝ²; m = 0.1 g.
  opt->update_hessian(
      TensorDict{{"w", tensor_of({2.0, 1.0, 3.0}, {3, 1}, DType::f64)}, {"d", tensor_of({0.0}, {1}, DType::f64)}}, 4);
  give_grad(w, {0.01, 1.0, -0.02});
  give_grad(d, {0.3});
  opt->step(1.0);
  // ratios: 0.001 / 0.032 = 0.03125; 0.1 / 0.008 → clipped to 1; −0.002 / 0.072 = −0.02777…;
  // d has h = 0, so m / eps is clipped to 1; d is a gain: no decay.
  expect_values(w, {1.0 * 0.95 - 0.1 * 0.03125, -1.0 * 0.95 - 0.1 * 1.0, 2.0 * 0.95 - 0.1 * (-0.002 / 0.072)}, 1e-13,
                "w step 1");
  expect_values(d, {0.5 - 0.1 * 1.0}, 1e-13, "d step 1");

  // Step 2 without a new estimate: m = 0.9 m + 0.1 g, same h.
  give_grad(w, {0.01, -0.95, 0.0});
  give_grad(d, {0.0});
  opt->step(1.0);
  const double m0 = 0.9 * 0.001 + 0.001, m1 = 0.9 * 0.1 - 0.095, m2 = 0.9 * -0.002;
  const double w0 = 0.95 - 0.003125, w1 = -0.95 - 0.1, w2 = 1.9 + 0.1 * 0.002 / 0.072;
  expect_values(w, {w0 * 0.95 - 0.1 * (m0 / 0.032), w1 * 0.95 - 0.1 * (m1 / 0.008), w2 * 0.95 - 0.1 * (m2 / 0.072)},
                1e-13, "w step 2");
  // d: m = 0.9 · 0.03 = 0.027 over h = 0 → clipped to 1 again.
  expect_values(d, {0.4 - 0.1}, 1e-13, "d step 2");
}

TEST(SophiaByHand, HessianArgumentsChecked) {
  Tensor w = leaf({1.0, 2.0}, {2});
  auto opt = make_optimizer(config_named("sophia"), TensorDict{{"w", w}, {"v", leaf({1.0}, {1})}});
  const std::string msg = error_of<ValueError>([&] {
    opt->update_hessian(TensorDict{{"w", tensor_of({1.0, 2.0, 3.0}, {3}, DType::f64)}}, 8);
  });
  EXPECT_NE(msg.find("'w' is f64 [3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing 'v'"), std::string::npos) << msg;
  EXPECT_NE(error_of<ValueError>([&] { opt->update_hessian(TensorDict{}, 0); }).find("tokens"), std::string::npos);
  // The other optimizers never ask for a Hessian.
  for (const char* name : {"adamw", "muon", "sgd"})
    EXPECT_FALSE(make_optimizer(config_named(name), TensorDict{{"w", leaf({1.0}, {1})}})->wants_hessian(0));
}

// The rank-one case of Newton–Schulz has a closed form: G = s u vᵀ stays rank one and its
// singular value, normalised to s0 = ‖G‖/(‖G‖ + 1e-7), follows s ← a s + b s³ + c s⁵.
double rank_one_ns(double norm, int steps) {
  double s = norm / (norm + 1e-7);
  for (int i = 0; i < steps; ++i) s = 3.4445 * s - 4.7750 * s * s * s + 2.0315 * std::pow(s, 5);
  return s;
}

TEST(MuonByHand, RankOneMatricesAndAuxAdamW) {
  Tensor wide = leaf({1.0, -1.0, 0.5, 2.0}, {1, 4});
  Tensor tall = leaf({0.5, 0.25, -1.0}, {3, 1});
  Tensor emb = leaf({1.0, 2.0}, {1, 2});
  Tensor gain = leaf({1.0, 1.0}, {2});
  TensorDict params{
      {"blocks.0.wide", wide}, {"blocks.0.tall", tall}, {"embeddings.weight", emb}, {"blocks.0.norm.weight", gain}};
  OptimizerConfig c = config_named("muon");
  c.muon_lr = 0.02;
  c.lr = 0.1;
  c.weight_decay = 0.5;
  auto opt = make_optimizer(c, params);
  const std::vector<double> g_wide = {3.0, 0.0, -4.0, 0.0}, g_tall = {1.0, 2.0, 2.0};
  give_grad(wide, g_wide);
  give_grad(tall, g_tall);
  give_grad(emb, {0.5, -0.5});
  give_grad(gain, {-1.0, 2.0});
  opt->step(1.0);
  // Nesterov update = (1 − β) g + β (1 − β) g = 0.0975 g: direction g / ‖g‖, norm 0.0975 ‖g‖.
  const double s_wide = rank_one_ns(0.0975 * 5.0, 5), s_tall = rank_one_ns(0.0975 * 3.0, 5);
  const double decay = 1 - 0.02 * 0.5;
  expect_values(wide, {1.0 * decay - 0.02 * s_wide * 0.6, -1.0 * decay, 0.5 * decay + 0.02 * s_wide * 0.8, 2.0 * decay},
                1e-12, "wide matrix (scale 1)");
  const double k = 0.02 * std::sqrt(3.0) * s_tall;  // tall: shape factor sqrt(3 / 1)
  expect_values(tall, {0.5 * decay - k / 3.0, 0.25 * decay - 2.0 * k / 3.0, -1.0 * decay - 2.0 * k / 3.0}, 1e-12,
                "tall matrix (scale sqrt 3)");
  // The internal AdamW: first step ≈ sign(g) · lr; the embedding decays with the AdamW lr.
  expect_values(emb, {1.0 * 0.95 - 0.1 * 0.5 / (0.5 + kEps), 2.0 * 0.95 + 0.1 * 0.5 / (0.5 + kEps)}, 1e-12,
                "embedding (AdamW)");
  expect_values(gain, {1.0 + 0.1 * 1.0 / (1.0 + kEps), 1.0 - 0.1 * 2.0 / (2.0 + kEps)}, 1e-12, "gain (AdamW)");
  const TensorDict s = opt->state();
  EXPECT_TRUE(s.contains("momentum/blocks.0.wide"));
  EXPECT_TRUE(s.contains("adamw.exp_avg/embeddings.weight"));
  EXPECT_FALSE(s.contains("momentum/embeddings.weight"));
}

TEST(Routing, ByNameAndDim) {
  const Tensor m = zeros({4, 4}), v = zeros({4});
  EXPECT_EQ(route_of("blocks.0.mixer.q_proj.weight", m), ParamRoute::muon_matrix);
  EXPECT_EQ(route_of("blocks.0.mixer.q_conv1d.weight", zeros({4, 3})), ParamRoute::matrix);  // depthwise filters
  EXPECT_EQ(route_of("blocks.0.mixer.conv1d.bias", v), ParamRoute::gain);
  EXPECT_EQ(route_of("embeddings.weight", m), ParamRoute::matrix);
  EXPECT_EQ(route_of("lm_head.weight", m), ParamRoute::matrix);
  EXPECT_EQ(route_of("blocks.0.norm.weight", v), ParamRoute::gain);
  EXPECT_EQ(route_of("blocks.0.mixer.o_proj.bias", v), ParamRoute::gain);
  EXPECT_EQ(route_of("blocks.0.mixer.A_log", m), ParamRoute::gain);  // Mamba-1's 2-D A_log
  EXPECT_EQ(route_of("blocks.0.mixer.D", v), ParamRoute::gain);
  EXPECT_EQ(route_of("blocks.0.mixer.dt_bias", v), ParamRoute::gain);
  EXPECT_EQ(route_of("blocks.0.mixer.Dx.weight", m), ParamRoute::muon_matrix);  // only an exact "D"
  EXPECT_TRUE(is_decayed("lm_head.weight", m));
  EXPECT_FALSE(is_decayed("blocks.0.mixer.A_log", m));
}

// With zero gradients every optimizer's update is zero, so only the decoupled decay moves
// the parameters: matrices shrink by 1 − lr·wd, gains stay.
class DecayOnlyOnMatrices : public ::testing::TestWithParam<std::string> {};

TEST_P(DecayOnlyOnMatrices, ZeroGradients) {
  TensorDict params = random_params(7, DType::f64);
  const TensorDict before = copy_params(params);
  OptimizerConfig c = config_named(GetParam());
  c.lr = 0.1;
  c.muon_lr = 0.2;
  c.weight_decay = 0.5;
  auto opt = make_optimizer(c, params);
  for (const auto& [name, p] : params) p.set_grad(zeros(p.shape(), p.dtype()));
  opt->step(1.0);
  for (const auto& [name, p] : params) {
    const ParamRoute route = route_of(name, p);
    const double lr = (GetParam() == "muon" && route == ParamRoute::muon_matrix) ? 0.2 : 0.1;
    const double factor = route == ParamRoute::gain ? 1.0 : 1.0 - lr * 0.5;
    std::vector<double> expected = values(before.at(name));
    for (double& x : expected) x *= factor;
    expect_values(p, expected, 1e-14, GetParam() + " " + name);
  }
}

INSTANTIATE_TEST_SUITE_P(All, DecayOnlyOnMatrices, ::testing::Values("adamw", "muon", "sophia", "sgd"));

class UpdatesInPlace : public ::testing::TestWithParam<std::string> {};

TEST_P(UpdatesInPlace, SameStorageNoHistoryF32) {
  TensorDict params = random_params(3, DType::f32);
  const Tensor q = params.at("blocks.0.mixer.q_proj.weight");
  const Tensor model_handle(q.impl_ptr());  // what a module holds
  const void* storage = q.raw_data();
  const std::vector<double> before = values(q);
  auto opt = make_optimizer(config_named(GetParam()), params);
  Generator gen(11);
  random_grads(params, gen);
  opt->step(1.0);
  EXPECT_EQ(model_handle.raw_data(), storage);
  EXPECT_NE(values(model_handle), before);
  for (const auto& [name, p] : params) {
    EXPECT_TRUE(p.is_leaf()) << name;
    EXPECT_TRUE(p.requires_grad()) << name;
    EXPECT_EQ(p.dtype(), DType::f32) << name;
    for (double x : values(p)) ASSERT_TRUE(std::isfinite(x)) << name;
  }
  // A parameter without a gradient is left alone.
  const Tensor emb = params.at("embeddings.weight");
  const std::vector<double> emb_before = values(emb);
  emb.zero_grad();
  opt->step(1.0);
  EXPECT_EQ(values(emb), emb_before);
}

INSTANTIATE_TEST_SUITE_P(All, UpdatesInPlace, ::testing::Values("adamw", "muon", "sophia", "sgd"));

}  // namespace
}  // namespace lnx::train
