// Layers of a model config: named layer specs (a mixer type, its own options, mlp), the older
// `mixers:` spelling and checkpoints written with it, per-layer MLPs, layer errors, and the
// presets' content (sizes and patterns as they were before layers had names).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "core/config.h"
#include "io/atomic_file.h"
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

std::string error_of(const std::function<void()>& fn) { return lnx::error_of<ValueError>(fn); }

modules::AttentionConfig attention(const ModelConfig& c, const std::string& layer) {
  return c.layer(layer).options.as<modules::AttentionConfig>();
}

// The issue's example: local attention layers with a window and a global one without.
const char* kLocalGlobal = R"(name: local-global
d_model: 64
n_layer: 4
block_pattern: [attn_local, attn_local, attn_local, attn_global]
layers:
  attn_local: {mixer: attention, num_heads: 4, window: 512}
  attn_global: {mixer: attention, num_heads: 4}
)";

TEST(NamedLayers, LocalGlobalExampleLoadsBuildsAndRoundTrips) {
  const ModelConfig c = from_text(kLocalGlobal);
  EXPECT_EQ(c.layer_names(), (std::vector<std::string>{"attn_local", "attn_local", "attn_local", "attn_global"}));
  EXPECT_EQ(c.layer_mixers(), (std::vector<std::string>(4, "attention")));
  EXPECT_EQ(attention(c, "attn_local").window, 512);
  EXPECT_EQ(attention(c, "attn_local").num_heads, 4);
  EXPECT_EQ(attention(c, "attn_global").window, 0);
  EXPECT_EQ(attention(c, "attn_global").num_heads, 4);
  EXPECT_EQ(attention(c, "attn_global").chunk_size, modules::AttentionConfig{}.chunk_size);  // the default
  EXPECT_TRUE(c.layer("attn_local").mlp);  // attention's recipe has an MLP
  // Written in full and read back to the same config.
  const std::string text = core::to_yaml_string(model_config_to_yaml(c));
  EXPECT_NE(text.find("attn_local:\n    mixer: attention\n    mlp: true\n    num_heads: 4"), std::string::npos) << text;
  EXPECT_EQ(core::to_yaml_string(model_config_to_yaml(from_text(text))), text);
  // The model: four attention blocks, the windowed ones cheaper at long contexts.
  LMModel m(c, 1);
  ASSERT_EQ(m.num_blocks(), 4u);
  EXPECT_EQ(m.block(0).layer_name(), "attn_local");
  EXPECT_EQ(m.block(3).layer_name(), "attn_global");
  EXPECT_EQ(m.block(3).mixer_name(), "attention");
  EXPECT_LT(m.block(0).mixer->flops_per_token(4096), m.block(3).mixer->flops_per_token(4096));
  EXPECT_DOUBLE_EQ(m.block(0).mixer->flops_per_token(512), m.block(3).mixer->flops_per_token(512));
}

// Two layers of one mixer type with different windows: each keeps the KV cache its window
// needs, and the same weights give different outputs once the window cuts the context.
TEST(NamedLayers, EachLayerRunsWithItsOwnWindow) {
  const std::string base =
      "d_model: 16\nvocab_size: 11\nn_layer: 2\nblock_pattern: [local, global]\n"
      "layers:\n  local: {mixer: attention, num_heads: 2, window: 4, chunk_size: 4}\n"
      "  global: {mixer: attention, num_heads: 2, chunk_size: 4}\n";
  LMModel m(from_text(base), 3);
  Generator gen(2);
  const int64_t T = 12;
  const Tensor ids = randint({2, T}, 0, 11, gen, DType::i64);
  const ModelOutput out = m.forward(ids);
  EXPECT_EQ(out.state.layers[0].get("k_cache").size(1), 3);  // window − 1 keys
  EXPECT_EQ(out.state.layers[1].get("k_cache").size(1), T);  // every key
  // One-layer models with identical weights (the window adds none), window 4 against none.
  auto one = [&](const std::string& window) {
    return LMModel(from_text("d_model: 16\nvocab_size: 11\nn_layer: 1\nblock_pattern: [a]\n"
                             "layers:\n  a: {mixer: attention, num_heads: 2, chunk_size: 4" +
                             window + "}\n"),
                   5);
  };
  const LMModel windowed = one(", window: 4"), full = one("");
  const Tensor a = windowed.forward(ids).logits, b = full.forward(ids).logits;
  EXPECT_LT(max_abs_error(slice(a, 1, 0, 4), slice(b, 1, 0, 4)), 1e-6);  // within the window: the same
  EXPECT_GT(max_abs_error(slice(a, 1, 4, T), slice(b, 1, 4, T)), 1e-6);  // beyond it: not
}

TEST(NamedLayers, MlpIsAPropertyOfTheLayer) {
  // Default from the mixer's recipe: attention blocks have an MLP, Mamba blocks none.
  ModelConfig c = from_text("block_pattern: [attention, mamba]\n");
  EXPECT_TRUE(c.layer("attention").mlp);
  EXPECT_FALSE(c.layer("mamba").mlp);
  LMModel plain(c);
  EXPECT_NE(plain.block(0).mlp, nullptr);
  EXPECT_EQ(plain.block(1).mlp, nullptr);
  // Overridden per layer.
  c = from_text(
      "n_layer: 3\nblock_pattern: [bare, attention, mamba]\n"
      "layers:\n  bare: {mixer: attention, mlp: false}\n  mamba: {mlp: true}\n");
  LMModel m(c);
  EXPECT_EQ(m.block(0).mlp, nullptr);
  EXPECT_EQ(m.block(0).mlp_norm, nullptr);
  EXPECT_EQ(m.block(0).parameters().size(), plain.block(0).parameters().size() - 4);  // mlp_norm + 3 projections
  EXPECT_NE(m.block(1).mlp, nullptr);
  EXPECT_NE(m.block(2).mlp, nullptr);
  for (const auto& [name, t] : m.parameters()) EXPECT_EQ(name.rfind("blocks.0.mlp", 0), std::string::npos) << name;
  EXPECT_TRUE(m.parameters().contains("blocks.2.mlp.down_proj.weight"));
  // The old spelling's use_mlp sets the same property.
  c = from_text("block_pattern: [attention]\nmixers:\n  attention: {use_mlp: false, window: 8}\n");
  EXPECT_FALSE(c.layer("attention").mlp);
  EXPECT_EQ(attention(c, "attention").window, 8);
  EXPECT_EQ(LMModel(c).block(0).mlp, nullptr);
}

TEST(NamedLayers, OldFormWithMixersStillReads) {
  // Today's simple form: layers named by mixer type, options under `mixers:` or `layers:`.
  const ModelConfig old_form = from_text(
      "d_model: 32\nblock_pattern: [gated_deltanet, attention]\nmixers:\n  attention: {window: 16, num_heads: 2}\n");
  const ModelConfig new_form = from_text(
      "d_model: 32\nblock_pattern: [gated_deltanet, attention]\nlayers:\n  attention: {window: 16, num_heads: 2}\n");
  EXPECT_EQ(core::to_yaml_string(model_config_to_yaml(old_form)), core::to_yaml_string(model_config_to_yaml(new_form)));
  EXPECT_EQ(attention(old_form, "attention").window, 16);
  EXPECT_EQ(old_form.layer("gated_deltanet").options.type_name(), "GatedDeltaNetConfig");
  // The same name in both sections is given twice.
  const std::string e =
      error_of([] { from_text("block_pattern: [attention]\nmixers:\n  attention: {}\nlayers:\n  attention: {}\n"); });
  EXPECT_NE(e.find("layers.attention is given twice"), std::string::npos) << e;
}

// A checkpoint directory as the code before named layers wrote it (config.yaml with `mixers:`
// and `use_mlp`) loads, with the same layers as today's preset.
TEST(NamedLayers, CheckpointWrittenWithMixersLoads) {
  const char* old_config = R"(name: hybrid3-tiny
vocab_size: 256
d_model: 64
n_layer: 3
block_pattern: [gated_deltanet, mamba2, attention]
mlp_ratio: 4.0
mlp_hidden: 0
tie_embeddings: true
norm_eps: 1.0e-06
init_std: 0.02
mixers:
  gated_deltanet:
    num_heads: 2
    head_dim: 32
    expand_v: 2.0
    use_short_conv: true
    conv_size: 4
    use_output_gate: true
    chunk_size: 32
    use_mlp: true
  mamba2:
    head_dim: 16
    conv_size: 4
    state_size: 16
    expand: 2.0
    n_groups: 1
    chunk_size: 32
    use_mlp: false
  attention:
    num_heads: 2
    head_dim: 32
    num_kv_heads: 1
    rope_theta: 10000.0
    window: 0
    chunk_size: 64
    use_mlp: true
)";
  const std::string dir = ::testing::TempDir() + "lnx_old_form_ckpt";
  std::filesystem::remove_all(dir);
  LMModel m(preset_config("hybrid3-tiny"), 4);
  save_model(m, dir);
  io::write_file_atomic("test", dir + "/config.yaml", old_config);
  auto back = load_model(dir);
  EXPECT_EQ(core::to_yaml_string(model_config_to_yaml(back->config())),
            core::to_yaml_string(model_config_to_yaml(preset_config("hybrid3-tiny"))));
  Generator gen(1);
  const Tensor ids = randint({1, 9}, 0, 256, gen, DType::i64);
  EXPECT_EQ(max_abs_error(back->forward(ids).logits, m.forward(ids).logits), 0.0);
  // Saving again writes the new form.
  save_model(*back, dir);
  const std::string text = core::to_yaml_string(core::load_yaml_file(dir + "/config.yaml"));
  EXPECT_NE(text.find("layers:"), std::string::npos) << text;
  EXPECT_EQ(text.find("mixers:"), std::string::npos) << text;
  EXPECT_EQ(text.find("use_mlp"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

TEST(NamedLayers, ErrorsAreStrictAndPositioned) {
  // An unknown key: the mixer's keys plus mixer, mlp and moe, with the line.
  std::string e = error_of([] { from_text("block_pattern: [a]\nlayers:\n  a: {mixer: attention, windw: 8}\n"); });
  EXPECT_NE(e.find("test.yaml: layers.a line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'windw'; valid keys: mixer, mlp, moe, num_heads, head_dim, num_kv_heads, rope_theta, "
                   "window, chunk_size"),
            std::string::npos)
      << e;
  // Another mixer's option.
  e = error_of([] { from_text("block_pattern: [a]\nlayers:\n  a: {mixer: mamba, window: 8}\n"); });
  EXPECT_NE(e.find("unknown key 'window'; valid keys: mixer, mlp, moe, state_size"), std::string::npos) << e;
  // An unknown mixer type: the registered ones.
  e = error_of([] { from_text("block_pattern: [a]\nlayers:\n  a: {mixer: transformerxl}\n"); });
  EXPECT_NE(e.find("unknown mixer 'transformerxl'"), std::string::npos) << e;
  for (const auto& name : modules::mixer_names()) EXPECT_NE(e.find(name), std::string::npos) << name;
  EXPECT_NE(e.find("line 3"), std::string::npos) << e;
  // A layer that is not a mixer type needs `mixer:`.
  e = error_of([] { from_text("block_pattern: [a]\nlayers:\n  a: {window: 8}\n"); });
  EXPECT_NE(e.find("'a' is not a mixer type"), std::string::npos) << e;
  // A pattern name that is neither a layer nor a mixer.
  e = error_of([] { from_text("block_pattern: [a, b]\nlayers:\n  a: {mixer: attention}\n"); });
  EXPECT_NE(e.find("'b' is neither a layer (a) nor a mixer"), std::string::npos) << e;
  EXPECT_NE(e.find("gated_deltanet"), std::string::npos) << e;
  // A layer the pattern does not use.
  e = error_of([] { from_text("block_pattern: [a]\nlayers:\n  a: {mixer: attention}\n  b: {mixer: mamba}\n"); });
  EXPECT_NE(e.find("layers.b is configured but not used by block_pattern"), std::string::npos) << e;
  // Wrong types of mixer and mlp.
  e = error_of([] { from_text("block_pattern: [a]\nlayers:\n  a: {mixer: [attention]}\n"); });
  EXPECT_NE(e.find("'mixer' must be a string"), std::string::npos) << e;
  e = error_of([] { from_text("block_pattern: [attention]\nlayers:\n  attention: {mlp: maybe}\n"); });
  EXPECT_NE(e.find("'mlp' must be a boolean"), std::string::npos) << e;
  // Bounds: the mixer, the layer, the key and the file.
  e = error_of([] { from_text("block_pattern: [loc]\nlayers:\n  loc: {mixer: attention, window: -3}\n"); });
  EXPECT_NE(e.find("[attention, layer loc] window = -3: expected 0"), std::string::npos) << e;
  EXPECT_NE(e.find("test.yaml"), std::string::npos) << e;
  e = error_of([] { from_text("block_pattern: [gla]\nlayers:\n  gla: {expand_k: .inf}\n"); });
  EXPECT_NE(e.find("[gla] expand_k = inf"), std::string::npos) << e;
}

// README's model config example (keep the two in step).
TEST(NamedLayers, ReadmeExampleLoads) {
  const ModelConfig c = from_text(R"(name: my-hybrid
vocab_size: 256
d_model: 384
n_layer: 9
block_pattern: [gated_deltanet, mamba2, attn_local]   # repeated to n_layer
layers:
  gated_deltanet: {num_heads: 6, head_dim: 64}
  attn_local: {mixer: attention, num_heads: 6, num_kv_heads: 3, window: 1024}
)");
  EXPECT_EQ(c.layer_mixers()[2], "attention");
  EXPECT_EQ(attention(c, "attn_local").window, 1024);
  EXPECT_EQ(c.layer("gated_deltanet").options.get("head_dim"), core::FieldValue(int64_t{64}));
  EXPECT_FALSE(c.layer("mamba2").mlp);
}

TEST(NamedLayers, PresetLayersAreOverriddenByName) {
  // preset + a layer entry without `mixer:` keeps the preset's options for that layer.
  ModelConfig c = from_text("preset: hybrid-tiny\nlayers:\n  attention: {window: 16}\n");
  const ModelConfig p = preset_config("hybrid-tiny");
  EXPECT_EQ(attention(c, "attention").window, 16);
  EXPECT_EQ(attention(c, "attention").num_kv_heads, attention(p, "attention").num_kv_heads);
  // Naming another mixer for a preset's layer starts from that mixer's defaults.
  c = from_text("preset: hybrid-tiny\nlayers:\n  attention: {mixer: mamba2}\n");
  EXPECT_EQ(c.layer("attention").mixer, "mamba2");
  EXPECT_FALSE(c.layer("attention").mlp);
  EXPECT_EQ(c.layer("attention").options.type_name(), "Mamba2Config");
}

// ---- presets: the same sizes and patterns as before layers had names ----

struct PresetContent {
  std::string name;
  int64_t n_layer;
  std::string pattern;              // names separated by spaces
  std::vector<std::string> layers;  // "name: mlp=… key=value …"
};

std::map<std::string, std::string> parse_options(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line.substr(line.find(':') + 1));
  std::string kv;
  while (in >> kv) out[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  return out;
}

TEST(Presets, ContentIsUnchanged) {
  const std::vector<PresetContent> want = {
      {"attention-tiny",
       2,
       "attention",
       {"attention: mlp=true num_heads=2 head_dim=32 num_kv_heads=1 rope_theta=10000 window=0 chunk_size=64 "
        "qkv_bias=false o_bias=false qk_norm=false rope_dim=0 output_gate=false rope_scaling=none "
        "rope_scaling_factor=1 rope_low_freq_factor=1 rope_high_freq_factor=4 rope_original_context=8192"}},
      {"attention-small",
       8,
       "attention",
       {"attention: mlp=true num_heads=6 head_dim=64 num_kv_heads=3 rope_theta=10000 window=0 chunk_size=64 "
        "qkv_bias=false o_bias=false qk_norm=false rope_dim=0 output_gate=false rope_scaling=none "
        "rope_scaling_factor=1 rope_low_freq_factor=1 rope_high_freq_factor=4 rope_original_context=8192"}},
      {"deltanet-tiny",
       2,
       "deltanet",
       {"deltanet: mlp=true num_heads=2 head_dim=32 expand_v=1 use_short_conv=true conv_size=4 "
        "use_output_gate=false chunk_size=32 num_v_heads=0"}},
      {"deltanet-small",
       8,
       "deltanet",
       {"deltanet: mlp=true num_heads=6 head_dim=64 expand_v=1 use_short_conv=true conv_size=4 "
        "use_output_gate=false chunk_size=32 num_v_heads=0"}},
      {"gated_deltanet-tiny",
       2,
       "gated_deltanet",
       {"gated_deltanet: mlp=true num_heads=2 head_dim=32 expand_v=2 use_short_conv=true conv_size=4 "
        "use_output_gate=true chunk_size=32 num_v_heads=0"}},
      {"gated_deltanet-small",
       8,
       "gated_deltanet",
       {"gated_deltanet: mlp=true num_heads=6 head_dim=64 expand_v=2 use_short_conv=true conv_size=4 "
        "use_output_gate=true chunk_size=32 num_v_heads=0"}},
      {"gla-tiny",
       2,
       "gla",
       {"gla: mlp=true num_heads=2 head_dim=0 expand_k=0.5 expand_v=1 use_short_conv=false conv_size=4 "
        "use_output_gate=true gate_low_rank_dim=16 gate_logit_normalizer=16 chunk_size=64"}},
      {"gla-small",
       8,
       "gla",
       {"gla: mlp=true num_heads=6 head_dim=0 expand_k=0.5 expand_v=1 use_short_conv=false conv_size=4 "
        "use_output_gate=true gate_low_rank_dim=16 gate_logit_normalizer=16 chunk_size=64"}},
      {"hgrn2-tiny",
       2,
       "hgrn2",
       {"hgrn2: mlp=true num_heads=2 head_dim=32 expand_k=1 use_short_conv=false conv_size=4 chunk_size=64"}},
      {"hgrn2-small",
       8,
       "hgrn2",
       {"hgrn2: mlp=true num_heads=6 head_dim=64 expand_k=1 use_short_conv=false conv_size=4 chunk_size=64"}},
      {"kda-tiny",
       2,
       "kda",
       {"kda: mlp=true num_heads=2 head_dim=32 expand_v=1 use_short_conv=true conv_size=4 use_output_gate=true "
        "gate_low_rank_dim=0 chunk_size=32"}},
      {"kda-small",
       8,
       "kda",
       {"kda: mlp=true num_heads=6 head_dim=64 expand_v=1 use_short_conv=true conv_size=4 use_output_gate=true "
        "gate_low_rank_dim=0 chunk_size=32"}},
      {"linear_attention-tiny",
       2,
       "linear_attention",
       {"linear_attention: mlp=true num_heads=2 head_dim=32 expand_k=1 expand_v=1 feature_map=identity "
        "normalize=false chunk_size=64"}},
      {"linear_attention-small",
       8,
       "linear_attention",
       {"linear_attention: mlp=true num_heads=6 head_dim=64 expand_k=1 expand_v=1 feature_map=identity "
        "normalize=false chunk_size=64"}},
      {"mamba-tiny", 4, "mamba", {"mamba: mlp=false conv_size=4 state_size=16 expand=2 dt_rank=0 chunk_size=64"}},
      {"mamba-small", 16, "mamba", {"mamba: mlp=false conv_size=4 state_size=16 expand=2 dt_rank=0 chunk_size=64"}},
      {"mamba2-tiny",
       4,
       "mamba2",
       {"mamba2: mlp=false head_dim=16 conv_size=4 state_size=16 expand=2 n_groups=1 chunk_size=32 norm_eps=1e-05"}},
      {"mamba2-small",
       16,
       "mamba2",
       {"mamba2: mlp=false head_dim=64 conv_size=4 state_size=64 expand=2 n_groups=1 chunk_size=32 norm_eps=1e-05"}},
      {"retnet-tiny",
       2,
       "retnet",
       {"retnet: mlp=true num_heads=2 head_dim=32 expand_k=1 expand_v=2 use_output_gate=true rope_theta=10000 "
        "chunk_size=64"}},
      {"retnet-small",
       8,
       "retnet",
       {"retnet: mlp=true num_heads=6 head_dim=64 expand_k=1 expand_v=2 use_output_gate=true rope_theta=10000 "
        "chunk_size=64"}},
      {"hybrid-tiny",
       3,
       "gated_deltanet gated_deltanet attention",
       {"gated_deltanet: mlp=true num_heads=2 head_dim=32 expand_v=2 use_short_conv=true conv_size=4 "
        "use_output_gate=true chunk_size=32 num_v_heads=0",
        "attention: mlp=true num_heads=2 head_dim=32 num_kv_heads=1 rope_theta=10000 window=0 chunk_size=64 "
        "qkv_bias=false o_bias=false qk_norm=false rope_dim=0 output_gate=false rope_scaling=none "
        "rope_scaling_factor=1 rope_low_freq_factor=1 rope_high_freq_factor=4 rope_original_context=8192"}},
      {"hybrid-small",
       9,
       "gated_deltanet gated_deltanet attention",
       {"gated_deltanet: mlp=true num_heads=6 head_dim=64 expand_v=2 use_short_conv=true conv_size=4 "
        "use_output_gate=true chunk_size=32 num_v_heads=0",
        "attention: mlp=true num_heads=6 head_dim=64 num_kv_heads=3 rope_theta=10000 window=0 chunk_size=64 "
        "qkv_bias=false o_bias=false qk_norm=false rope_dim=0 output_gate=false rope_scaling=none "
        "rope_scaling_factor=1 rope_low_freq_factor=1 rope_high_freq_factor=4 rope_original_context=8192"}},
      {"hybrid3-tiny",
       3,
       "gated_deltanet mamba2 attention",
       {"gated_deltanet: mlp=true num_heads=2 head_dim=32 expand_v=2 use_short_conv=true conv_size=4 "
        "use_output_gate=true chunk_size=32 num_v_heads=0",
        "mamba2: mlp=false head_dim=16 conv_size=4 state_size=16 expand=2 n_groups=1 chunk_size=32 norm_eps=1e-05",
        "attention: mlp=true num_heads=2 head_dim=32 num_kv_heads=1 rope_theta=10000 window=0 chunk_size=64 "
        "qkv_bias=false o_bias=false qk_norm=false rope_dim=0 output_gate=false rope_scaling=none "
        "rope_scaling_factor=1 rope_low_freq_factor=1 rope_high_freq_factor=4 rope_original_context=8192"}},
      {"hybrid3-small",
       9,
       "gated_deltanet mamba2 attention",
       {"gated_deltanet: mlp=true num_heads=6 head_dim=64 expand_v=2 use_short_conv=true conv_size=4 "
        "use_output_gate=true chunk_size=32 num_v_heads=0",
        "mamba2: mlp=false head_dim=64 conv_size=4 state_size=64 expand=2 n_groups=1 chunk_size=32 norm_eps=1e-05",
        "attention: mlp=true num_heads=6 head_dim=64 num_kv_heads=3 rope_theta=10000 window=0 chunk_size=64 "
        "qkv_bias=false o_bias=false qk_norm=false rope_dim=0 output_gate=false rope_scaling=none "
        "rope_scaling_factor=1 rope_low_freq_factor=1 rope_high_freq_factor=4 rope_original_context=8192"}},
  };
  ASSERT_EQ(presets().size(), want.size());
  for (const PresetContent& w : want) {
    SCOPED_TRACE(w.name);
    const ModelConfig c = preset_config(w.name);
    EXPECT_EQ(c.n_layer, w.n_layer);
    std::string pattern;
    for (const auto& n : c.block_pattern) pattern += (pattern.empty() ? "" : " ") + n;
    EXPECT_EQ(pattern, w.pattern);
    EXPECT_EQ(c.layers.size(), w.layers.size());
    for (const std::string& line : w.layers) {
      const std::string name = line.substr(0, line.find(':'));
      ASSERT_TRUE(c.layers.count(name)) << name;
      const LayerSpec& layer = c.layers.at(name);
      EXPECT_EQ(layer.mixer, name);
      std::map<std::string, std::string> got{{"mlp", layer.mlp ? "true" : "false"}};
      for (const auto& f : layer.options.fields()) got[f.name] = f.default_value;
      EXPECT_EQ(got, parse_options(line)) << name;
    }
  }
}

}  // namespace
}  // namespace lnx::models
