// ModelConfig ↔ YAML: the scalar fields through the config base (core/config.h), the mixers
// section by hand: each entry is read over that mixer's defaults (or the preset's options)
// and may only use the keys the mixer accepts. `preset: NAME` starts from a preset.
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include <fmt/format.h>

#include "core/config.h"
#include "models/config.h"
#include "models/presets.h"
#include "tensor/error.h"

namespace lnx::models {

namespace {

// Runs fn; a ValueError it throws gets the file and position in front of its message.
template <class F>
auto at_position(const std::string& where, const YAML::Mark& at, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{} (in {}, line {})", e.what(), where, at.line + 1));
  }
}

}  // namespace

ModelConfig model_config_from_yaml(const YAML::Node& node, const std::string& where) {
  ModelConfig c;
  std::vector<std::string> keys;
  c.visit([&](const char* key, auto&, const char*, const auto&...) { keys.push_back(key); });
  keys.push_back("mixers");
  keys.push_back("preset");
  // `preset: NAME` starts from that preset; the other keys override it.
  if (node.IsMap() && node["preset"]) {
    LNX_CHECK(node["preset"].IsScalar(), ValueError, "[config] {} line {}: preset must be a preset name", where,
              node["preset"].Mark().line + 1);
    c = preset_config(node["preset"].as<std::string>());
  }
  // The scalar fields (read_config rejects unknown keys; "mixers" is valid and read below).
  core::read_config(node, c, where, &keys);
  // A preset's options for mixers the (overridden) pattern no longer uses are dropped.
  for (auto it = c.mixers.begin(); it != c.mixers.end();)
    it = std::find(c.block_pattern.begin(), c.block_pattern.end(), it->first) == c.block_pattern.end()
             ? c.mixers.erase(it)
             : std::next(it);
  const YAML::Node mixers = node.IsMap() ? node["mixers"] : YAML::Node();
  if (mixers && !mixers.IsNull()) {
    LNX_CHECK(mixers.IsMap(), ValueError, "[config] {} line {}: mixers must be a map of mixer name → options", where,
              mixers.Mark().line + 1);
    std::vector<std::string> seen;
    for (const auto& item : mixers) {
      const YAML::Mark at = item.first.Mark();
      LNX_CHECK(item.first.IsScalar(), ValueError, "[config] {} line {}, column {}: a mixer name must be a plain name",
                where, at.line + 1, at.column + 1);
      const std::string name = item.first.as<std::string>();
      LNX_CHECK(std::find(seen.begin(), seen.end(), name) == seen.end(), ValueError,
                "[config] {} line {}, column {}: mixers.{} is given twice", where, at.line + 1, at.column + 1, name);
      seen.push_back(name);
      const modules::MixerSpec& spec = *at_position(where, at, [&] { return &modules::mixer_spec(name); });
      modules::MixerConfig mc = c.mixers.count(name) ? c.mixers[name] : spec.defaults;
      core::read_config(item.second, mc, where + ": mixers." + name, &spec.keys);
      c.mixers[name] = mc;
    }
  }
  // Errors of the whole config (unknown mixers in block_pattern, sizes) point at the file.
  const YAML::Mark top = node["block_pattern"] ? node["block_pattern"].Mark() : node.Mark();
  at_position(where, top, [&] {
    c.validate();
    for (const auto& m : c.block_pattern) modules::check_mixer_config(m, c.mixer_config(m));
    return 0;
  });
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
