// Exact resume (state() → load_state() into a fresh optimizer over copied parameters, then
// bit-identical next steps), state() being a snapshot, load_state listing every problem at
// once and changing nothing when it fails, and config/parameter validation.
#include <gtest/gtest.h>

#include "optim_test_util.h"
#include "train/optim.h"

namespace lnx::train {
namespace {

using namespace lnx::train::testing;

// One training-like step: fresh seeded grads, a Hessian estimate when asked for, the update.
void run_step(Optimizer& opt, const TensorDict& params, int64_t step, uint64_t seed) {
  Generator gen(seed * 1000 + static_cast<uint64_t>(step));
  random_grads(params, gen);
  if (opt.wants_hessian(step)) {
    TensorDict sampled;
    for (const auto& [name, p] : params) sampled.insert(name, randn(p.shape(), gen, p.dtype()));
    opt.update_hessian(sampled, 16);
  }
  opt.step(0.5 + 0.1 * static_cast<double>(step));
}

struct ResumeCase {
  std::string name;
  DType dtype;
};

class ExactResume : public ::testing::TestWithParam<ResumeCase> {};

TEST_P(ExactResume, IdenticalStepsAfterLoad) {
  const auto [name, dtype] = GetParam();
  OptimizerConfig c = config_named(name);
  c.hessian_interval = 2;
  TensorDict params = random_params(5, dtype);
  auto opt = make_optimizer(c, params);
  for (int64_t s = 0; s < 3; ++s) run_step(*opt, params, s, 1);

  const TensorDict saved = opt->state();
  EXPECT_EQ(saved.at("step").dtype(), DType::i64);
  EXPECT_EQ(saved.at("step").to_vector<int64_t>()[0], 3);
  TensorDict resumed_params = copy_params(params);
  auto resumed = make_optimizer(c, resumed_params);
  resumed->load_state(saved);
  EXPECT_EQ(resumed->steps_taken(), 3);

  // A snapshot: later steps of the original must not change what was saved.
  const std::vector<double> saved_first = values(saved.items()[1].second);
  for (int64_t s = 3; s < 6; ++s) {
    run_step(*opt, params, s, 1);
    run_step(*resumed, resumed_params, s, 1);
  }
  EXPECT_EQ(values(saved.items()[1].second), saved_first);
  for (const auto& [pname, p] : params) EXPECT_EQ(values(p), values(resumed_params.at(pname))) << name << " " << pname;
  const TensorDict a = opt->state(), b = resumed->state();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, t] : a) {
    if (t.dtype() == DType::i64) {
      EXPECT_EQ(t.to_vector<int64_t>(), b.at(key).to_vector<int64_t>()) << key;
    } else {
      EXPECT_EQ(values(t), values(b.at(key))) << key;
    }
  }

  // Without the state the fresh optimizer would have diverged (the test can fail).
  TensorDict cold_params = copy_params(resumed_params);
  auto cold = make_optimizer(c, cold_params);
  TensorDict warm_params = copy_params(resumed_params);
  auto warm = make_optimizer(c, warm_params);
  warm->load_state(resumed->state());
  run_step(*cold, cold_params, 6, 2);
  run_step(*warm, warm_params, 6, 2);
  bool any_difference = false;
  for (const auto& [pname, p] : cold_params) any_difference |= values(p) != values(warm_params.at(pname));
  EXPECT_TRUE(any_difference) << name;
}

INSTANTIATE_TEST_SUITE_P(All, ExactResume,
                         ::testing::Values(ResumeCase{"adamw", DType::f64}, ResumeCase{"adamw", DType::f32},
                                           ResumeCase{"muon", DType::f64}, ResumeCase{"muon", DType::f32},
                                           ResumeCase{"sophia", DType::f64}, ResumeCase{"sophia", DType::f32},
                                           ResumeCase{"sgd", DType::f64}, ResumeCase{"sgd", DType::f32}),
                         [](const auto& info) { return info.param.name + "_" + dtype_name(info.param.dtype); });

TEST(LoadState, ListsEveryProblemAtOnceAndChangesNothing) {
  TensorDict params = random_params(9, DType::f32);
  auto opt = make_optimizer(config_named("muon"), params);
  run_step(*opt, params, 0, 3);
  const TensorDict good = opt->state();

  TensorDict bad;
  for (const auto& [key, t] : good) {
    if (key == "adamw.exp_avg/embeddings.weight") continue;  // missing
    if (key == "momentum/blocks.0.mlp.w1.weight")
      bad.insert(key, zeros({3, 3}));  // wrong shape
    else if (key == "adamw.exp_avg_sq/lm_head.weight")
      bad.insert(key, zeros(t.shape(), DType::f64));  // dtype
    else if (key == "step")
      bad.insert(key, from_list({1.0}, {1}, DType::f32));  // not an i64 counter
    else
      bad.insert(key, t);
  }
  bad.insert("exp_avg/blocks.0.extra", zeros({2}));  // unexpected

  TensorDict other_params = copy_params(params);
  auto target = make_optimizer(config_named("muon"), other_params);
  target->load_state(good);
  const TensorDict before = target->state();
  const std::string msg = error_of<ValueError>([&] { target->load_state(bad); });
  EXPECT_NE(msg.find("[muon] load_state"), std::string::npos) << msg;
  EXPECT_NE(msg.find("5 problems"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing 'adamw.exp_avg/embeddings.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'momentum/blocks.0.mlp.w1.weight' should be f32 [8,4] but is f32 [3,3]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("'adamw.exp_avg_sq/lm_head.weight' should be f32 [6,4] but is f64 [6,4]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("'step' should be a one-element i64 step counter"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected 'exp_avg/blocks.0.extra'"), std::string::npos) << msg;

  const TensorDict after = target->state();
  EXPECT_EQ(target->steps_taken(), 1);
  for (const auto& [key, t] : before) {
    if (t.dtype() != DType::i64) {
      EXPECT_EQ(values(t), values(after.at(key))) << key;
    }
  }

  // Another optimizer's state does not fit either (different slots).
  const std::string cross =
      error_of<ValueError>([&] { make_optimizer(config_named("sgd"), params)->load_state(good); });
  EXPECT_NE(cross.find("[sgd] load_state"), std::string::npos) << cross;
  EXPECT_NE(cross.find("unexpected 'adamw.step'"), std::string::npos) << cross;
  // A negative step counter is refused.
  TensorDict negative = good;
  negative.set("step", from_vector<int64_t>({-4}, {1}));
  EXPECT_NE(error_of<ValueError>([&] { target->load_state(negative); }).find("'step' is negative"), std::string::npos);
}

TEST(MakeOptimizer, RejectsBadConfigsAndParameters) {
  const TensorDict params{{"w", leaf({1.0, 2.0}, {2})}};
  auto bad = [&](auto edit) {
    OptimizerConfig c;
    edit(c);
    return error_of<ValueError>([&] { make_optimizer(c, params); });
  };
  EXPECT_NE(bad([](auto& c) { c.name = "adam"; }).find("got 'adam'"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.beta1 = 1.0; }).find("beta1"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.beta2 = -0.1; }).find("beta2"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.lr = -1; }).find("lr"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.eps = 0; }).find("eps"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.momentum = 1.0; }).find("momentum"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.ns_steps = 0; }).find("ns_steps"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.hessian_interval = 0; }).find("hessian_interval"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.rho = 0; }).find("rho"), std::string::npos);

  const Tensor matrix = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  const TensorDict strided{{"t", transpose(matrix.detach(), 0, 1)}};
  EXPECT_NE(error_of<ValueError>([&] { make_optimizer(OptimizerConfig{}, strided); }).find("contiguous"),
            std::string::npos);
  const TensorDict ints{{"i", zeros({2}, DType::i64)}};
  EXPECT_NE(error_of<DTypeError>([&] { make_optimizer(OptimizerConfig{}, ints); }).find("'i' must be f32 or f64"),
            std::string::npos);
}

}  // namespace
}  // namespace lnx::train
