// The optimizers on real models: the routing of every parameter of the tiny presets (gains,
// SSM parameters, depthwise conv filters, embeddings stay off Muon), and a few steps on one
// fixed batch lowering a model's loss through Module::parameters() handles.
#include <gtest/gtest.h>

#include "models/lm_model.h"
#include "models/presets.h"
#include "optim_test_util.h"
#include "train/optim.h"

namespace lnx::train {
namespace {

using namespace lnx::train::testing;

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

TEST(ModelRouting, TinyPresets) {
  for (const char* preset : {"mamba-tiny", "mamba2-tiny", "gated_deltanet-tiny", "hybrid3-tiny", "gla-tiny"}) {
    const models::LMModel model(models::preset_config(preset), 1);
    int64_t muon = 0;
    for (const auto& [name, p] : model.parameters()) {
      const ParamRoute route = route_of(name, p);
      if (p.dim() < 2 || ends_with(name, ".A_log") || ends_with(name, ".D") || ends_with(name, ".dt_bias"))
        EXPECT_EQ(route, ParamRoute::gain) << preset << " " << name;
      else if (name.find("embeddings") != std::string::npos || name.find("conv1d") != std::string::npos ||
               name.find("lm_head") != std::string::npos)
        EXPECT_EQ(route, ParamRoute::matrix) << preset << " " << name;
      else
        EXPECT_EQ(route, ParamRoute::muon_matrix) << preset << " " << name;
      if (route == ParamRoute::muon_matrix) {
        ++muon;
        EXPECT_EQ(p.dim(), 2) << name;
        EXPECT_EQ(name.rfind("blocks.", 0), 0u) << name;
      }
    }
    EXPECT_GT(muon, 0) << preset;
  }
}

class ModelSteps : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelSteps, LossFallsOnAFixedBatch) {
  models::LMModel model(models::preset_config("hybrid3-tiny"), 3);
  Generator gen(8);
  const Tensor tokens = randint({2, 33}, 0, model.config().vocab_size, gen);
  const Tensor ids = contiguous(slice(tokens, 1, 0, 32)), targets = contiguous(slice(tokens, 1, 1, 33));
  OptimizerConfig c = config_named(GetParam());
  c.lr = GetParam() == "sgd" ? 0.5 : 3e-3;
  c.hessian_interval = 2;
  const TensorDict params = model.parameters();
  auto opt = make_optimizer(c, params);
  const double initial = model.loss(ids, targets).item();
  for (int64_t s = 0; s < 8; ++s) {
    if (opt->wants_hessian(s)) {
      // The fixed targets stand in for sampled labels: enough to exercise the path.
      Tensor l = model.loss(ids, targets);
      l.backward();
      TensorDict grads;
      for (const auto& [name, p] : params) grads.insert(name, p.grad().defined() ? p.grad() : zeros_like(p));
      for (const auto& [name, p] : params) p.zero_grad();
      opt->update_hessian(grads, ids.numel());
    }
    model.loss(ids, targets).backward();
    opt->step(1.0);
    for (const auto& [name, p] : params) p.zero_grad();
  }
  const double final_loss = model.loss(ids, targets).item();
  EXPECT_LT(final_loss, initial - 1.0) << GetParam() << ": " << initial << " → " << final_loss;
  // The model's own parameter handles carry the update (same storage as the dict's).
  EXPECT_EQ(model.parameters().at("blocks.0.mlp.up_proj.weight").raw_data(),
            params.at("blocks.0.mlp.up_proj.weight").raw_data());
}

INSTANTIATE_TEST_SUITE_P(All, ModelSteps, ::testing::Values("adamw", "muon", "sophia", "sgd"));

}  // namespace
}  // namespace lnx::train
