// The built-in mixers, one function per mixer (defined next to the mixer). A mixer listed here
// is picked up by the registry-driven tests, the presets, `linearnexus list` and the docs.
#pragma once

#include <vector>

#include "modules/mixer.h"

namespace lnx::modules {

// ---- declarations (one line per mixer) ----
MixerSpec attention_mixer();
MixerSpec mamba_mixer();
MixerSpec mamba2_mixer();
MixerSpec deltanet_mixer();
MixerSpec gated_deltanet_mixer();
MixerSpec kda_mixer();
MixerSpec linear_attention_mixer();
MixerSpec retnet_mixer();
MixerSpec gla_mixer();
MixerSpec hgrn2_mixer();
// ---- end of declarations ----

inline std::vector<MixerSpec> builtin_mixers() {
  std::vector<MixerSpec> all;
  // ---- list (one line per mixer) ----
  all.push_back(attention_mixer());
  all.push_back(mamba_mixer());
  all.push_back(mamba2_mixer());
  all.push_back(deltanet_mixer());
  all.push_back(gated_deltanet_mixer());
  all.push_back(kda_mixer());
  all.push_back(linear_attention_mixer());
  all.push_back(retnet_mixer());
  all.push_back(gla_mixer());
  all.push_back(hgrn2_mixer());
  // ---- end of list ----
  return all;
}

}  // namespace lnx::modules
