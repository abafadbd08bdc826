// Fuzz target: training configs (YAML and key=value overrides), read exactly as
// `linearnexus train --config FILE key=value…` reads them, then written back and read again.
#include <cstdlib>
#include <optional>
#include <sstream>

#include "core/config.h"
#include "fuzz_targets.h"
#include "fuzz_util_internal.h"
#include "train/train_config.h"

namespace lnx::fuzz {

bool fuzz_train_config(const uint8_t* data, size_t size) {
  std::istringstream lines{std::string(as_text(data, size))};
  std::string yaml, line;
  std::vector<std::string> overrides;
  while (std::getline(lines, line)) {
    if (line.rfind('@', 0) == 0)
      overrides.push_back(line.substr(1));
    else
      yaml += line + "\n";
  }
  const std::string path = write_scratch("train.yaml", yaml);
  std::optional<train::TrainConfig> c;
  refusals_allowed([&] { c = train::load_train_config(path, overrides); });
  if (!c) return false;
  // A config that was accepted is written (train.yaml of every run) and must read back the same.
  const std::string text = core::to_yaml_string(train::train_config_to_yaml(*c));
  const train::TrainConfig back = train::train_config_from_yaml(core::parse_yaml(text, "<round trip>"), "<round trip>");
  if (core::to_yaml_string(train::train_config_to_yaml(back)) != text) std::abort();
  return true;
}

}  // namespace lnx::fuzz
