// A model whose blocks use a sparse MoE MLP (a layer's `moe:`): YAML round trip, chunk and
// recurrent forms agree, gradients reach the router and the experts, checkpoints reload.
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include "core/config.h"
#include "models/checkpoint.h"
#include "models/config.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::models {
namespace {

ModelConfig moe_config() {
  return model_config_from_yaml(
      YAML::Load("vocab_size: 50\nd_model: 16\nn_layer: 2\n"
                 "block_pattern: [gated_deltanet, attention]\n"
                 "layers:\n"
                 "  gated_deltanet: {num_heads: 2, head_dim: 8, moe: {num_experts: 4, top_k: 2,"
                 " expert_hidden: 12, shared_expert_hidden: 8}}\n"
                 "  attention: {num_heads: 2}\n"),
      "test.yaml");
}

TEST(MoeModel, ConfigRoundTripsAndNamesItsErrors) {
  const ModelConfig c = moe_config();
  EXPECT_EQ(c.layer("gated_deltanet").moe.num_experts, 4);
  EXPECT_EQ(c.layer("attention").moe.num_experts, 0);
  const ModelConfig again = model_config_from_yaml(model_config_to_yaml(c), "again");
  EXPECT_EQ(core::to_yaml_string(model_config_to_yaml(again)), core::to_yaml_string(model_config_to_yaml(c)));
  const std::string e = error_of<ValueError>([] {
    model_config_from_yaml(YAML::Load("block_pattern: [attention]\nlayers:\n  attention: {moe: {num_experts: 2, "
                                      "top_k: 3}}\n"),
                           "bad.yaml")
        .validate();
  });
  EXPECT_NE(e.find("top_k = 3 exceeds num_experts = 2"), std::string::npos) << e;
}

TEST(MoeModel, FormsAgreeGradientsFlowAndCheckpointsReload) {
  LMModel m(moe_config(), 3);
  EXPECT_NE(m.block(0).moe, nullptr);
  EXPECT_EQ(m.block(1).moe, nullptr);
  Generator gen(5);
  const Tensor ids = randint({2, 21}, 0, 50, gen, DType::i64);
  ForwardOptions chunk, recurrent;
  chunk.mode = core::Mode::chunk;
  recurrent.mode = core::Mode::recurrent;
  const Tensor a = m.forward(ids, nullptr, chunk).logits;
  EXPECT_TRUE(all_close(m.forward(ids, nullptr, recurrent).logits, a, 1e-5));
  m.loss(slice(ids, 1, 0, 20), slice(ids, 1, 1, 21)).backward();
  const TensorDict p = m.parameters();
  for (const char* name : {"blocks.0.mlp.gate.weight", "blocks.0.mlp.shared_expert_gate.weight",
                           "blocks.0.mlp.shared_expert.up_proj.weight"}) {
    ASSERT_TRUE(p.at(name).grad().defined()) << name;
    EXPECT_GT(max(abs(p.at(name).grad())).item(), 0.0) << name;
  }
  const std::string dir = ::testing::TempDir() + "lnx_moe_ckpt";
  save_model(m, dir);
  EXPECT_TRUE(all_close(load_model(dir)->forward(ids, nullptr, chunk).logits, a, 0.0, 0.0));
}

}  // namespace
}  // namespace lnx::models
