#include "models/config.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tensor/error.h"

namespace lnx::models {

std::vector<std::string> ModelConfig::layer_mixers() const {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n_layer && !block_pattern.empty(); ++i)
    out.push_back(block_pattern[static_cast<size_t>(i) % block_pattern.size()]);
  return out;
}

modules::MixerConfig ModelConfig::mixer_config(const std::string& mixer) const {
  auto it = mixers.find(mixer);
  return it != mixers.end() ? it->second : modules::mixer_spec(mixer).defaults;
}

void ModelConfig::validate() const {
  auto positive = [](const char* field, int64_t v) {
    LNX_CHECK(v > 0, ValueError, "[model config] {} must be positive, got {}", field, v);
  };
  positive("vocab_size", vocab_size);
  positive("d_model", d_model);
  positive("n_layer", n_layer);
  LNX_CHECK(mlp_hidden >= 0, ValueError, "[model config] mlp_hidden must be ≥ 0 (0 = from mlp_ratio), got {}",
            mlp_hidden);
  LNX_CHECK(mlp_ratio > 0, ValueError, "[model config] mlp_ratio must be positive, got {}", mlp_ratio);
  LNX_CHECK(norm_eps > 0 && init_std > 0, ValueError, "[model config] norm_eps and init_std must be positive");
  LNX_CHECK(!block_pattern.empty(), ValueError, "[model config] block_pattern is empty; mixers: {}",
            fmt::join(modules::mixer_names(), ", "));
  for (const auto& m : block_pattern) modules::mixer_spec(m);  // names the registered mixers if unknown
  for (const auto& [name, cfg] : mixers) {
    modules::mixer_spec(name);
    LNX_CHECK(std::find(block_pattern.begin(), block_pattern.end(), name) != block_pattern.end(), ValueError,
              "[model config] mixers.{} is configured but not used by block_pattern [{}]", name,
              fmt::join(block_pattern, ", "));
  }
}

}  // namespace lnx::models
