// ModelConfig YAML in and out, bad configurations, checkpoint mismatches, and the gradient of
// a small hybrid model's loss checked by finite differences in f64.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::models {
namespace {

ModelConfig from_text(const std::string& text) {
  return model_config_from_yaml(core::parse_yaml(text, "test.yaml"), "test.yaml");
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ModelConfigYaml, EveryPresetRoundTrips) {
  for (const auto& p : presets()) {
    const std::string text = core::to_yaml_string(model_config_to_yaml(p.config));
    const ModelConfig back = from_text(text);
    EXPECT_EQ(core::to_yaml_string(model_config_to_yaml(back)), text) << p.name;
    if (p.name.find("-tiny") == std::string::npos) continue;  // building the small ones is slow
    LMModel a(p.config, 1), b(back, 1);
    EXPECT_EQ(a.num_parameters(), b.num_parameters()) << p.name;
  }
}

TEST(ModelConfigYaml, MixerOptionsOverrideTheMixersDefaults) {
  const ModelConfig c = from_text(
      "d_model: 32\nn_layer: 3\nblock_pattern: [gated_deltanet, attention]\n"
      "mixers:\n  attention: {num_heads: 4, num_kv_heads: 2}\n");
  EXPECT_EQ(c.layer_mixers(), (std::vector<std::string>{"gated_deltanet", "attention", "gated_deltanet"}));
  EXPECT_EQ(c.mixer_config("attention").num_heads, 4);
  EXPECT_EQ(c.mixer_config("attention").num_kv_heads, 2);
  EXPECT_EQ(c.mixer_config("gated_deltanet").num_heads, modules::mixer_spec("gated_deltanet").defaults.num_heads);
}

TEST(ModelConfigYaml, BadConfigsGiveClearErrors) {
  // Unknown mixer: names the registered ones.
  std::string e = error_of([] { from_text("block_pattern: [gated_deltanet, transformerxl]\n"); });
  EXPECT_NE(e.find("transformerxl"), std::string::npos) << e;
  EXPECT_NE(e.find("gated_deltanet"), std::string::npos) << e;
  // Unknown top-level key: names it, the valid keys and the line.
  e = error_of([] { from_text("d_model: 32\nn_layers: 3\n"); });
  EXPECT_NE(e.find("n_layers"), std::string::npos) << e;
  EXPECT_NE(e.find("n_layer"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  // A key the mixer does not accept (window is attention's).
  e = error_of([] { from_text("block_pattern: [gated_deltanet]\nmixers:\n  gated_deltanet: {window: 8}\n"); });
  EXPECT_NE(e.find("window"), std::string::npos) << e;
  EXPECT_NE(e.find("mixers.gated_deltanet"), std::string::npos) << e;
  // Wrong type.
  e = error_of([] { from_text("d_model: wide\n"); });
  EXPECT_NE(e.find("d_model"), std::string::npos) << e;
  // Inconsistent dims: 5 heads of the default width do not divide d_model 32.
  e = error_of([] {
    LMModel m(from_text("d_model: 32\nblock_pattern: [attention]\nmixers:\n  attention: {num_heads: 5}\n"));
  });
  EXPECT_NE(e.find("num_heads"), std::string::npos) << e;
  // Options for a mixer the pattern does not use.
  e = error_of([] { from_text("block_pattern: [attention]\nmixers:\n  mamba: {state_size: 8}\n"); });
  EXPECT_NE(e.find("mamba"), std::string::npos) << e;
  // Non-positive sizes.
  e = error_of([] { from_text("n_layer: 0\n"); });
  EXPECT_NE(e.find("n_layer"), std::string::npos) << e;
}

TEST(Checkpoint, LoadReportsEveryMismatchAtOnce) {
  const std::string dir = ::testing::TempDir() + "lnx_ckpt_mismatch";
  std::filesystem::remove_all(dir);
  LMModel m(preset_config("hybrid-tiny"));
  save_model(m, dir);
  // Rewrite the weights with one tensor missing, one reshaped and one extra.
  TensorDict w = m.parameters(), bad;
  bool dropped = false, reshaped = false;
  for (const auto& [name, t] : w) {
    if (!dropped) {
      dropped = true;
      continue;
    }
    const bool flatten_this = !reshaped && t.dim() == 2;
    reshaped = reshaped || flatten_this;
    bad.insert(name, flatten_this ? reshape(t, {-1}) : t);
  }
  bad.insert("blocks.99.extra", zeros({2}));
  save_safetensors(dir + "/model.safetensors", bad);
  const std::string e = error_of([&] { load_model(dir); });
  EXPECT_NE(e.find("3 problems"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
  EXPECT_NE(e.find("blocks.99.extra"), std::string::npos) << e;
  EXPECT_NE(e.find("in the file but"), std::string::npos) << e;
  std::filesystem::remove_all(dir);
  EXPECT_NE(error_of([&] { load_model(dir); }).find("not a checkpoint"), std::string::npos);
}

// d(loss)/d(parameter) against central differences for entries of every parameter tensor.
TEST(ModelGradients, HybridModelMatchesFiniteDifferencesInF64) {
  ModelConfig c = preset_config("hybrid3-tiny");
  c.d_model = 16;
  c.vocab_size = 11;
  c.mlp_hidden = 24;
  for (auto& [name, mc] : c.mixers) {
    mc.num_heads = 2;
    mc.chunk_size = 4;
    if (name == "mamba2") {
      mc.head_dim = 8;
      mc.state_size = 4;
    } else {
      mc.head_dim = 8;
    }
    if (name == "attention") mc.num_kv_heads = 1;
  }
  LMModel m(c, 2);
  m.to(DType::f64);
  Generator gen(4);
  Tensor x = randint({2, 9}, 0, 11, gen, DType::i64), y = randint({2, 9}, 0, 11, gen, DType::i64);
  Tensor loss = m.loss(x, y);
  loss.backward();
  int checked = 0;
  m.for_each_parameter([&](const std::string& name, Tensor& p) {
    Tensor g = p.grad();
    ASSERT_TRUE(g.defined()) << name;
    const std::vector<double> gv = g.to_vector<double>();
    // Three entries per tensor: first, middle, last.
    for (int64_t idx : {int64_t{0}, p.numel() / 2, p.numel() - 1}) {
      double* data = p.data<double>();  // parameters are contiguous leaves
      const double orig = data[idx], eps = 1e-6;
      data[idx] = orig + eps;
      const double up = m.loss(x, y).item();
      data[idx] = orig - eps;
      const double down = m.loss(x, y).item();
      data[idx] = orig;
      const double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(gv[static_cast<size_t>(idx)], numeric, 1e-7 + 1e-5 * std::abs(numeric)) << name << "[" << idx << "]";
      ++checked;
    }
  });
  EXPECT_GT(checked, 60);
}

}  // namespace
}  // namespace lnx::models
