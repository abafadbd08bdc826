#include "models/presets.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tensor/error.h"

namespace lnx::models {

namespace {

// A model of width 64 (tiny) or 384 (small) whose layers are the pattern's mixers, each sized
// by its own MixerSpec::preset_options. Models of Mamba blocks only take mamba_ssm's norm eps,
// 1e-5 (also that of the Mamba-2 gated norm, so they export to Hugging Face exactly).
ModelConfig make_config(const std::string& name, const std::vector<std::string>& pattern, bool small, int64_t n_layer) {
  const modules::PresetScale scale = small ? modules::PresetScale::small : modules::PresetScale::tiny;
  ModelConfig c;
  c.name = name;
  c.vocab_size = 256;
  c.d_model = small ? 384 : 64;
  c.n_layer = n_layer;
  c.block_pattern = pattern;
  for (const auto& m : pattern) {
    if (c.layers.count(m)) continue;
    LayerSpec layer = LayerSpec::of(m);
    layer.options = modules::preset_mixer_options(m, c.d_model, scale);
    c.layers[m] = std::move(layer);
  }
  const bool ssm_only =
      std::all_of(pattern.begin(), pattern.end(), [](const std::string& m) { return m == "mamba" || m == "mamba2"; });
  if (ssm_only) c.norm_eps = 1e-5;
  return c;
}

}  // namespace

std::vector<Preset> presets() {
  std::vector<Preset> out;
  for (const auto& mixer : modules::mixer_names()) {
    const bool mixer_only = !modules::mixer_spec(mixer).block_mlp;  // blocks without MLP: twice the depth
    out.push_back({mixer + "-tiny", fmt::format("{}-block {} model, width 64 (tests)", mixer_only ? 4 : 2, mixer),
                   make_config(mixer + "-tiny", {mixer}, false, mixer_only ? 4 : 2)});
    out.push_back({mixer + "-small", fmt::format("{}-block {} model, width 384", mixer_only ? 16 : 8, mixer),
                   make_config(mixer + "-small", {mixer}, true, mixer_only ? 16 : 8)});
  }
  const std::vector<std::string> hybrid = {"gated_deltanet", "gated_deltanet", "attention"};
  const std::vector<std::string> hybrid3 = {"gated_deltanet", "mamba2", "attention"};
  out.push_back({"hybrid-tiny", "Gated DeltaNet with an attention block every third, width 64",
                 make_config("hybrid-tiny", hybrid, false, 3)});
  out.push_back({"hybrid-small", "Gated DeltaNet with an attention block every third, 9 blocks, width 384",
                 make_config("hybrid-small", hybrid, true, 9)});
  out.push_back({"hybrid3-tiny", "Gated DeltaNet, Mamba-2 and attention blocks in turn, width 64",
                 make_config("hybrid3-tiny", hybrid3, false, 3)});
  out.push_back({"hybrid3-small", "Gated DeltaNet, Mamba-2 and attention blocks in turn, 9 blocks, width 384",
                 make_config("hybrid3-small", hybrid3, true, 9)});
  return out;
}

ModelConfig preset_config(const std::string& name) {
  std::vector<std::string> names;
  for (auto& p : presets()) {
    if (p.name == name) return p.config;
    names.push_back(p.name);
  }
  throw ValueError(fmt::format("[presets] unknown preset '{}'; presets: {}", name, fmt::join(names, ", ")));
}

}  // namespace lnx::models
