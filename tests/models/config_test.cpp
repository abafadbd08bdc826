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
#include "modules/attention/attention.h"
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
  EXPECT_EQ(c.layer("attention").options.as<modules::AttentionConfig>().num_heads, 4);
  EXPECT_EQ(c.layer("attention").options.as<modules::AttentionConfig>().num_kv_heads, 2);
  EXPECT_EQ(c.layer("gated_deltanet").options.get("num_heads"),
            modules::mixer_spec("gated_deltanet").defaults.get("num_heads"));
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
  e = error_of(
      [] { LMModel m(from_text("d_model: 32\nblock_pattern: [attention]\nmixers:\n  attention: {num_heads: 5}\n")); });
  EXPECT_NE(e.find("num_heads"), std::string::npos) << e;
  // Errors of the whole config name the file.
  e = error_of([] { from_text("block_pattern: [gated_deltanet, transformerxl]\n"); });
  EXPECT_NE(e.find("test.yaml"), std::string::npos) << e;
  // Mixer entries: a non-name key, a duplicate.
  e = error_of([] { from_text("block_pattern: [attention]\nmixers:\n  [a, b]: {}\n"); });
  EXPECT_NE(e.find("plain name"), std::string::npos) << e;
  e = error_of([] { from_text("block_pattern: [attention]\nmixers:\n  attention: {}\n  attention: {}\n"); });
  EXPECT_NE(e.find("twice"), std::string::npos) << e;
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
  for (auto& [name, layer] : c.layers) {
    modules::MixerConfig& mc = layer.options;
    if (mc.has("num_heads")) mc.set("num_heads", 2);
    mc.set("chunk_size", 4);
    if (name == "mamba2") {
      mc.set("head_dim", 8);
      mc.set("state_size", 4);
    } else {
      mc.set("head_dim", 8);
    }
    if (name == "attention") mc.set("num_kv_heads", 1);
  }
  LMModel m(c, 2);
  m.to(DType::f64);
  int checked = 0;
  // T = 9 with chunk size 4: the chunk form's backward (several chunks) and the recurrent one.
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    ForwardOptions opt;
    opt.mode = mode;
    Generator gen(4);
    Tensor x = randint({2, 9}, 0, 11, gen, DType::i64), y = randint({2, 9}, 0, 11, gen, DType::i64);
    m.loss(x, y, opt).backward();
    m.for_each_parameter([&](const std::string& name, Tensor& p) {
      Tensor g = p.grad();
      ASSERT_TRUE(g.defined()) << name;
      const std::vector<double> gv = g.to_vector<double>();
      // Three entries per tensor: first, middle, last.
      for (int64_t idx : {int64_t{0}, p.numel() / 2, p.numel() - 1}) {
        double* data = p.data<double>();  // parameters are contiguous leaves
        const double orig = data[idx], eps = 1e-6;
        data[idx] = orig + eps;
        const double up = m.loss(x, y, opt).item();
        data[idx] = orig - eps;
        const double down = m.loss(x, y, opt).item();
        data[idx] = orig;
        const double numeric = (up - down) / (2 * eps);
        EXPECT_NEAR(gv[static_cast<size_t>(idx)], numeric, 1e-7 + 1e-5 * std::abs(numeric))
            << name << "[" << idx << "] " << core::mode_name(mode);
        ++checked;
      }
      p.zero_grad();
    });
  }
  EXPECT_GT(checked, 120);
}

}  // namespace
}  // namespace lnx::models

namespace lnx::models {
namespace {

TEST(ModelConfigYaml, NumbersAreWrittenForEveryYamlReader) {
  ModelConfig c = preset_config("hybrid-tiny");
  c.norm_eps = 1e-6;
  const std::string text = core::to_yaml_string(model_config_to_yaml(c));
  EXPECT_NE(text.find("norm_eps: 1.0e-06"), std::string::npos) << text;  // YAML 1.1 needs the dot
  EXPECT_EQ(from_text(text).norm_eps, 1e-6);
}

TEST(ModelConfigYaml, HostileSizesAreRejectedBeforeAllocating) {
  EXPECT_NE(error_of([] { from_text("mlp_ratio: .inf\n"); }).find("mlp_ratio"), std::string::npos);
  EXPECT_NE(error_of([] { from_text("d_model: 100000000\n"); }).find("d_model"), std::string::npos);
  EXPECT_NE(error_of([] { from_text("n_layer: 1000000000\n"); }).find("n_layer"), std::string::npos);
  EXPECT_NE(
      error_of([] { from_text("block_pattern: [mamba]\nmixers:\n  mamba: {expand: 1.0e+300}\n"); }).find("expand"),
      std::string::npos);
  // Within the bounds but beyond the machine: an error, not the OOM killer.
  const std::string e =
      error_of([] { LMModel m(from_text("d_model: 16384\nn_layer: 4096\nblock_pattern: [attention]\n")); });
  EXPECT_TRUE(e.find("GiB") != std::string::npos) << e;
}

TEST(Checkpoint, F64ModelsRoundTripAndDtypeMismatchesAreReported) {
  const std::string dir = ::testing::TempDir() + "lnx_ckpt_f64";
  LMModel m(preset_config("hybrid-tiny"), 1);
  m.to(DType::f64);
  save_model(m, dir);
  auto back = load_model(dir);
  EXPECT_EQ(back->dtype(), DType::f64);
  Generator gen(1);
  Tensor x = randint({1, 12}, 0, 256, gen, DType::i64);
  EXPECT_EQ(max_abs_error(back->forward(x).logits, m.forward(x).logits), 0.0);
  LMModel f32(preset_config("hybrid-tiny"), 1);
  const std::string e = error_of([&] { load_weights(f32, dir + "/model.safetensors"); });
  EXPECT_NE(e.find("is f64 in the file but f32 in the model"), std::string::npos) << e;
  std::filesystem::remove_all(dir);
}

TEST(ModelConfigYaml, PresetKeyStartsFromThePresetAndKeysOverride) {
  ModelConfig c = from_text("preset: hybrid-tiny\nd_model: 96\nmixers:\n  attention: {window: 16}\n");
  const ModelConfig p = preset_config("hybrid-tiny");
  EXPECT_EQ(c.d_model, 96);
  EXPECT_EQ(c.block_pattern, p.block_pattern);
  EXPECT_EQ(c.layer("attention").options.as<modules::AttentionConfig>().window, 16);
  EXPECT_EQ(c.layer("attention").options.as<modules::AttentionConfig>().num_heads,
            p.layer("attention").options.as<modules::AttentionConfig>().num_heads);
  // Changing the pattern drops the preset's options for mixers no longer used.
  c = from_text("preset: hybrid-tiny\nblock_pattern: [mamba2]\n");
  EXPECT_EQ(c.layers.count("attention"), 0u);
  EXPECT_NE(error_of([] { from_text("preset: no-such\n"); }).find("unknown preset"), std::string::npos);
}

}  // namespace
}  // namespace lnx::models
