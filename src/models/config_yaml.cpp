// ModelConfig ↔ YAML: the scalar fields through the config base (core/config.h), the layers
// by hand: each entry names its mixer (or is named after one), is read over that mixer's
// defaults (or the preset's options for that layer) and may only use the mixer's own keys plus
// `mixer` and `mlp`. The older `mixers:` section (keyed by mixer type, `use_mlp` for the
// block's MLP) is read as layer entries. `preset: NAME` starts from a preset.
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/config.h"
#include "models/config.h"
#include "models/presets.h"
#include "tensor/error.h"

namespace lnx::models {

namespace {

// Runs fn; a ValueError it throws gets the file and position in front of its message.
template <class F> auto at_position(const std::string& where, const YAML::Mark& at, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{} (in {}, line {})", e.what(), where, at.line + 1));
  }
}

// Reads one entry of `layers:` (old_form: of `mixers:`) over what c already holds for it.
void read_layer(ModelConfig& c, const std::string& name, const YAML::Node& entry, const YAML::Mark& at,
                const std::string& where, bool old_form) {
  const std::string section = fmt::format("{}: {}.{}", where, old_form ? "mixers" : "layers", name);
  LNX_CHECK(!entry || entry.IsNull() || entry.IsMap(), ValueError,
            "[config] {} line {}, column {}: a layer is a map of options (mixer: <type>, mlp: <bool>, …)", section,
            entry.Mark().line + 1, entry.Mark().column + 1);
  // Its mixer type: `mixer:`, else what c holds for the name, else the name itself.
  std::string mixer;
  const bool has_mixer = !old_form && entry.IsMap() && entry["mixer"];
  const auto existing = c.layers.find(name);
  if (has_mixer) {
    const YAML::Node given = entry["mixer"];
    core::config_detail::read_value(given, mixer, "mixer", section);
    at_position(where, given.Mark(), [&] { return &modules::mixer_spec(mixer); });
  } else if (!old_form && existing != c.layers.end()) {
    mixer = existing->second.mixer;
  } else {
    LNX_CHECK(modules::is_mixer(name), ValueError,
              "[config] {} line {}, column {}: '{}' is not a mixer type: give the layer's mixer (mixer: <type>); "
              "mixers: {}",
              section, at.line + 1, at.column + 1, name, fmt::join(modules::mixer_names(), ", "));
    mixer = name;
  }
  // Over the existing entry when it is of the same mixer, else over the mixer's defaults.
  LayerSpec spec =
      existing != c.layers.end() && existing->second.mixer == mixer ? existing->second : LayerSpec::of(mixer);
  const std::vector<std::string> extra =
      old_form ? std::vector<std::string>{"use_mlp"} : std::vector<std::string>{"mixer", "mlp", "moe"};
  spec.options.read_yaml(entry, section, extra);
  const char* mlp_key = old_form ? "use_mlp" : "mlp";
  if (entry.IsMap() && entry[mlp_key]) core::config_detail::read_value(entry[mlp_key], spec.mlp, mlp_key, section);
  if (!old_form && entry.IsMap() && entry["moe"]) core::read_config(entry["moe"], spec.moe, section + ".moe");
  c.layers[name] = std::move(spec);
}

}  // namespace

ModelConfig model_config_from_yaml(const YAML::Node& node, const std::string& where) {
  ModelConfig c;
  std::vector<std::string> keys;
  c.visit([&](const char* key, auto&, const char*, const auto&...) { keys.push_back(key); });
  keys.push_back("layers");
  keys.push_back("mixers");
  keys.push_back("preset");
  // `preset: NAME` starts from that preset; the other keys override it.
  if (node.IsMap() && node["preset"]) {
    LNX_CHECK(node["preset"].IsScalar(), ValueError, "[config] {} line {}: preset must be a preset name", where,
              node["preset"].Mark().line + 1);
    c = preset_config(node["preset"].as<std::string>());
  }
  // The scalar fields (read_config rejects unknown keys; "layers" and "mixers" are valid and
  // read below).
  core::read_config(node, c, where, &keys);
  // A preset's layers the (overridden) pattern no longer uses are dropped.
  for (auto it = c.layers.begin(); it != c.layers.end();)
    it = std::find(c.block_pattern.begin(), c.block_pattern.end(), it->first) == c.block_pattern.end()
             ? c.layers.erase(it)
             : std::next(it);
  std::vector<std::string> seen;  // layer names given, in either section
  for (const char* section : {"mixers", "layers"}) {
    const bool old_form = std::string(section) == "mixers";
    const YAML::Node entries = node.IsMap() ? node[section] : YAML::Node();
    if (!entries || entries.IsNull()) continue;
    LNX_CHECK(entries.IsMap(), ValueError, "[config] {} line {}: {} must be a map of {} → options", where,
              entries.Mark().line + 1, section, old_form ? "mixer name" : "layer name");
    for (const auto& item : entries) {
      const YAML::Mark at = item.first.Mark();
      LNX_CHECK(item.first.IsScalar(), ValueError, "[config] {} line {}, column {}: a {} name must be a plain name",
                where, at.line + 1, at.column + 1, old_form ? "mixer" : "layer");
      const std::string name = item.first.as<std::string>();
      LNX_CHECK(std::find(seen.begin(), seen.end(), name) == seen.end(), ValueError,
                "[config] {} line {}, column {}: {}.{} is given twice", where, at.line + 1, at.column + 1, section,
                name);
      seen.push_back(name);
      if (old_form) at_position(where, at, [&] { return &modules::mixer_spec(name); });
      read_layer(c, name, item.second, at, where, old_form);
    }
  }
  // Errors of the whole config (unknown layers in block_pattern, unused entries, sizes,
  // option bounds) point at the file.
  const YAML::Mark top = node["block_pattern"] ? node["block_pattern"].Mark() : node.Mark();
  at_position(where, top, [&] {
    c.validate();
    return 0;
  });
  return c;
}

YAML::Node model_config_to_yaml(const ModelConfig& config) {
  YAML::Node node = core::write_config(config);
  for (const auto& name : config.block_pattern) {
    if (node["layers"][name]) continue;
    const LayerSpec spec = config.layer(name);
    YAML::Node entry(YAML::NodeType::Map);
    entry["mixer"] = spec.mixer;
    entry["mlp"] = spec.mlp;
    if (spec.moe.num_experts > 0) entry["moe"] = core::write_config(spec.moe);
    for (const auto& option : spec.options.to_yaml()) entry[option.first.Scalar()] = option.second;
    node["layers"][name] = entry;
  }
  return node;
}

ModelConfig load_model_config(const std::string& path) {
  return model_config_from_yaml(core::load_yaml_file(path), path);
}

}  // namespace lnx::models
