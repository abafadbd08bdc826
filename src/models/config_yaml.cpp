// ModelConfig ↔ YAML: the scalar fields through the config base (core/config.h), the mixers
// section by hand: each entry is read over that mixer's defaults and may only use the keys
// the mixer accepts.
#include <yaml-cpp/yaml.h>

#include "core/config.h"
#include "models/config.h"
#include "tensor/error.h"

namespace lnx::models {

ModelConfig model_config_from_yaml(const YAML::Node& node, const std::string& where) {
  ModelConfig c;
  std::vector<std::string> keys;
  c.visit([&](const char* key, auto&, const char*) { keys.push_back(key); });
  keys.push_back("mixers");
  // The scalar fields (read_config rejects unknown keys; "mixers" is valid and read below).
  core::read_config(node, c, where, &keys);
  if (node.IsMap() && node["mixers"]) {
    const YAML::Node mixers = node["mixers"];
    LNX_CHECK(mixers.IsMap(), ValueError, "[config] {} line {}: mixers must be a map of mixer name → options", where,
              mixers.Mark().line + 1);
    for (const auto& item : mixers) {
      const std::string name = item.first.as<std::string>();
      const modules::MixerSpec& spec = modules::mixer_spec(name);
      modules::MixerConfig mc = spec.defaults;
      core::read_config(item.second, mc, where + ": mixers." + name, &spec.keys);
      c.mixers[name] = mc;
    }
  }
  c.validate();
  return c;
}

YAML::Node model_config_to_yaml(const ModelConfig& config) {
  YAML::Node node = core::write_config(config);
  for (const auto& m : config.block_pattern) {
    if (node["mixers"][m]) continue;
    const modules::MixerSpec& spec = modules::mixer_spec(m);
    node["mixers"][m] = core::write_config(config.mixer_config(m), &spec.keys);
  }
  return node;
}

ModelConfig load_model_config(const std::string& path) {
  return model_config_from_yaml(core::load_yaml_file(path), path);
}

}  // namespace lnx::models
