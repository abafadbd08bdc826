#include "models/presets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tensor/error.h"

namespace lnx::models {

namespace {

bool accepts(const modules::MixerSpec& spec, const std::string& key) {
  for (const auto& k : spec.keys)
    if (k == key) return true;
  return false;
}

// Sizes of one mixer in a model of width d: heads of 32 (tiny) or 64 (small) dims; SSM state
// 16 (Mamba) or 16/64 (Mamba-2, whose heads are 16/64 channels wide).
modules::MixerConfig sized_mixer(const std::string& mixer, int64_t d, bool small) {
  const modules::MixerSpec& spec = modules::mixer_spec(mixer);
  modules::MixerConfig c = spec.defaults;
  const int64_t head = small ? 64 : 32;
  if (accepts(spec, "num_heads")) c.num_heads = std::max<int64_t>(1, d / head);
  if (accepts(spec, "num_kv_heads") && c.num_heads % 2 == 0) c.num_kv_heads = c.num_heads / 2;
  if (mixer == "mamba2") {
    c.head_dim = small ? 64 : 16;
    c.state_size = small ? 64 : 16;
  } else if (accepts(spec, "head_dim") && mixer != "gla") {  // gla: keys of expand_k · d (0.5 in fla)
    c.head_dim = head;
  }
  if (mixer == "mamba") c.state_size = 16;
  return c;
}

ModelConfig make_config(const std::string& name, const std::vector<std::string>& pattern, bool small,
                        int64_t n_layer) {
  ModelConfig c;
  c.name = name;
  c.vocab_size = 256;
  c.d_model = small ? 384 : 64;
  c.n_layer = n_layer;
  c.block_pattern = pattern;
  for (const auto& m : pattern)
    if (!c.mixers.count(m)) c.mixers[m] = sized_mixer(m, c.d_model, small);
  return c;
}

}  // namespace

std::vector<Preset> presets() {
  std::vector<Preset> out;
  for (const auto& mixer : modules::mixer_names()) {
    const bool ssm = !modules::mixer_spec(mixer).defaults.use_mlp;  // blocks without MLP: twice the depth
    out.push_back({mixer + "-tiny", fmt::format("{}-block {} model, width 64 (tests)", ssm ? 4 : 2, mixer),
                   make_config(mixer + "-tiny", {mixer}, false, ssm ? 4 : 2)});
    out.push_back({mixer + "-small", fmt::format("{}-block {} model, width 384", ssm ? 16 : 8, mixer),
                   make_config(mixer + "-small", {mixer}, true, ssm ? 16 : 8)});
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
