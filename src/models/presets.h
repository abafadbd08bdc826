// Model presets by name: for every registered mixer "<mixer>-tiny" (tests, seconds on a CPU)
// and "<mixer>-small" (~10–30M parameters, real CPU runs), and hybrids of several mixers:
//   hybrid-tiny/-small   gated_deltanet, gated_deltanet, attention   (repeated)
//   hybrid3-tiny/-small  gated_deltanet, mamba2, attention            (three mixers)
#pragma once

#include <string>
#include <vector>

#include "models/config.h"

namespace lnx::models {

struct Preset {
  std::string name;
  std::string description;
  ModelConfig config;
};

std::vector<Preset> presets();
ModelConfig preset_config(const std::string& name);  // ValueError listing the presets

}  // namespace lnx::models
