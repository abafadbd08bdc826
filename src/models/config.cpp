#include "models/config.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tensor/error.h"

namespace lnx::models {

LayerSpec LayerSpec::of(const std::string& mixer) {
  const modules::MixerSpec& spec = modules::mixer_spec(mixer);
  return LayerSpec{mixer, spec.defaults, spec.block_mlp, {}};
}

std::vector<std::string> ModelConfig::layer_names() const {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n_layer && !block_pattern.empty(); ++i)
    out.push_back(block_pattern[static_cast<size_t>(i) % block_pattern.size()]);
  return out;
}

std::vector<std::string> ModelConfig::layer_mixers() const {
  std::vector<std::string> out;
  for (const auto& name : layer_names()) out.push_back(layer(name).mixer);
  return out;
}

LayerSpec ModelConfig::layer(const std::string& name) const {
  auto it = layers.find(name);
  if (it != layers.end()) return it->second;
  if (modules::is_mixer(name)) return LayerSpec::of(name);
  std::vector<std::string> named;
  for (const auto& [n, spec] : layers) named.push_back(n);
  throw ValueError(fmt::format("[model config] '{}' is neither a layer ({}) nor a mixer ({})", name,
                               named.empty() ? std::string("none given") : fmt::format("{}", fmt::join(named, ", ")),
                               fmt::join(modules::mixer_names(), ", ")));
}

void ModelConfig::validate() const {
  // Bounds first: configs come from files, and sizes become allocations.
  auto size = [](const char* field, int64_t v, int64_t lo, int64_t hi) {
    LNX_CHECK(v >= lo && v <= hi, ValueError, "[model config] {} = {}: expected {} … {}", field, v, lo, hi);
  };
  auto real = [](const char* field, double v, double hi) {
    LNX_CHECK(std::isfinite(v) && v > 0 && v <= hi, ValueError, "[model config] {} = {}: expected a number in (0, {}]",
              field, v, hi);
  };
  size("vocab_size", vocab_size, 1, int64_t{1} << 24);
  size("d_model", d_model, 1, 1 << 16);
  size("n_layer", n_layer, 1, 4096);
  size("mlp_hidden", mlp_hidden, 0, 1 << 20);
  real("mlp_ratio", mlp_ratio, 64);
  real("norm_eps", norm_eps, 1);
  real("init_std", init_std, 100);
  LNX_CHECK(!block_pattern.empty(), ValueError, "[model config] block_pattern is empty; mixers: {}",
            fmt::join(modules::mixer_names(), ", "));
  for (const auto& name : block_pattern) layer(name);  // names the layers and mixers if unknown
  for (const auto& [name, spec] : layers) {
    LNX_CHECK(std::find(block_pattern.begin(), block_pattern.end(), name) != block_pattern.end(), ValueError,
              "[model config] layers.{} is configured but not used by block_pattern [{}]", name,
              fmt::join(block_pattern, ", "));
    modules::mixer_spec(spec.mixer);  // names the registered mixers if unknown
    modules::check_mixer_config(spec.mixer, spec.options,
                                name == spec.mixer ? spec.mixer : fmt::format("{}, layer {}", spec.mixer, name));
    core::check_bounds(spec.moe, fmt::format("model config, layers.{}.moe", name));
    if (spec.moe.num_experts > 0) {
      LNX_CHECK(spec.mlp, ValueError, "[model config] layers.{}.moe needs mlp: true (the MoE is the block's MLP)",
                name);
      LNX_CHECK(spec.moe.top_k <= spec.moe.num_experts, ValueError,
                "[model config] layers.{}.moe.top_k = {} exceeds num_experts = {}", name, spec.moe.top_k,
                spec.moe.num_experts);
    }
  }
}

}  // namespace lnx::models
