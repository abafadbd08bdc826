#include "fuzz_targets.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/config.h"
#include "models/config.h"

namespace lnx::fuzz {

models::ModelConfig small_model_config(const std::string& mixers) {
  const std::map<std::string, std::string> layers = {
      {"gated_deltanet", "{mixer: gated_deltanet, num_heads: 2, head_dim: 4}"},
      {"mamba2", "{mixer: mamba2, head_dim: 4, state_size: 4, mlp: false, norm_eps: 1.0e-6}"},
      {"attention", "{mixer: attention, num_heads: 2, head_dim: 4, num_kv_heads: 1}"}};
  std::string yaml = fmt::format("name: fuzz\nvocab_size: 16\nd_model: 8\nn_layer: {}\nblock_pattern: [{}]\nlayers:\n",
                                 std::count(mixers.begin(), mixers.end(), ',') + 1, mixers);
  for (const auto& [name, layer] : layers)
    if (mixers.find(name) != std::string::npos) yaml += "  " + name + ": " + layer + "\n";
  return models::model_config_from_yaml(core::parse_yaml(yaml, "<fuzz model>"), "<fuzz model>");
}

const models::LMModel& state_file_model() {
  static const models::LMModel model(small_model_config("gated_deltanet, mamba2, attention"), 1);
  return model;
}

const std::vector<FuzzTargetInfo>& fuzz_targets() {
  static const std::vector<FuzzTargetInfo> targets = {
      {"safetensors", fuzz_safetensors}, {"tokenizer_json", fuzz_tokenizer_json}, {"train_config", fuzz_train_config},
      {"state_file", fuzz_state_file},   {"checkpoint", fuzz_checkpoint},         {"chat_template", fuzz_chat_template},
  };
  return targets;
}

}  // namespace lnx::fuzz
