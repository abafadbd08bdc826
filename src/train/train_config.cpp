#include "train/train_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/config.h"
#include "models/presets.h"
#include "tensor/error.h"

namespace lnx::train {

namespace {
const std::vector<std::string> kSections = {"model", "data", "optimizer", "schedule", "train"};
}

TrainConfig train_config_from_yaml(const YAML::Node& root, const std::string& where) {
  TrainConfig c;
  c.model = models::preset_config(kDefaultPreset);
  if (!root || root.IsNull()) return c;
  LNX_CHECK(root.IsMap(), ValueError, "[config] {}: a training config is a map with sections {}", where,
            fmt::join(kSections, ", "));
  for (const auto& item : root) {
    LNX_CHECK(item.first.IsScalar(), ValueError, "[config] {} line {}, column {}: a section name must be a name", where,
              item.first.Mark().line + 1, item.first.Mark().column + 1);
    const std::string key = item.first.Scalar();
    LNX_CHECK(std::find(kSections.begin(), kSections.end(), key) != kSections.end(), ValueError,
              "[config] {} line {}, column {}: unknown section '{}'; sections: {}", where, item.first.Mark().line + 1,
              item.first.Mark().column + 1, key, fmt::join(kSections, ", "));
  }
  if (root["model"]) {
    c.model = models::model_config_from_yaml(root["model"], where + ": model");
    c.model_vocab_size_set = root["model"].IsMap() && root["model"]["vocab_size"];
  }
  core::read_config(root["data"], c.data, where + ": data");
  core::read_config(root["optimizer"], c.optimizer, where + ": optimizer");
  core::read_config(root["schedule"], c.schedule, where + ": schedule");
  core::read_config(root["train"], c.train, where + ": train");
  return c;
}

YAML::Node train_config_to_yaml(const TrainConfig& c) {
  YAML::Node root(YAML::NodeType::Map);
  root["model"] = models::model_config_to_yaml(c.model);
  root["data"] = core::write_config(c.data);
  root["optimizer"] = core::write_config(c.optimizer);
  root["schedule"] = core::write_config(c.schedule);
  root["train"] = core::write_config(c.train);
  return root;
}

void apply_override(YAML::Node& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  LNX_CHECK(eq != std::string::npos && eq > 0, ValueError,
            "[config] override '{}' is not of the form section.key=value (e.g. optimizer.lr=1e-3)", assignment);
  const std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  std::vector<std::string> keys;
  for (size_t start = 0;;) {
    const size_t dot = path.find('.', start);
    keys.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const auto& k : keys) LNX_CHECK(!k.empty(), ValueError, "[config] override '{}' has an empty key", assignment);
  LNX_CHECK(keys.size() >= 2, ValueError, "[config] override '{}' needs a section and a key (sections: {})", assignment,
            fmt::join(kSections, ", "));
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  LNX_CHECK(root.IsMap(), ValueError, "[config] override '{}': the config it applies to is not a map of sections",
            assignment);
  YAML::Node parsed = core::parse_yaml(value.empty() ? "''" : value, "override " + assignment);
  // Walk down, creating maps; yaml-cpp nodes are handles, so assigning through them edits root.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node next = chain.back()[keys[i]];
    LNX_CHECK(!next || next.IsNull() || next.IsMap(), ValueError,
              "[config] override '{}': '{}' is not a map in the config, so it has no key '{}'", assignment, keys[i],
              keys[i + 1]);
    if (!next || !next.IsMap()) {
      chain.back()[keys[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[keys[i]];
    }
    chain.push_back(next);
  }
  chain.back()[keys.back()] = parsed;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root = path.empty() ? YAML::Node(YAML::NodeType::Map) : core::load_yaml_file(path);
  for (const auto& o : overrides) apply_override(root, o);
  return train_config_from_yaml(root, path.empty() ? "overrides" : path);
}

}  // namespace lnx::train
