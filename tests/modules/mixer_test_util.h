// Shared by the registry-driven mixer tests: tiny configurations of every registered mixer and
// helpers to run one on a batch.
#pragma once

#include <string>
#include <utility>

#include "modules/mixer.h"

namespace lnx::modules::testing {

constexpr int64_t kTestDModel = 16;

inline bool accepts(const MixerSpec& spec, const std::string& key) { return spec.defaults.has(key); }

// The mixer's defaults with small sizes for every size key it accepts (heads 2, head dim 8,
// state 8, KV heads 1, chunk 16 so that ~40 tokens span several chunks) and optional
// parameters switched on.
inline MixerConfig tiny_config(const MixerSpec& spec) {
  MixerConfig c = spec.defaults;
  for (const auto& [key, value] : {std::pair{"num_heads", 2}, std::pair{"head_dim", 8}, std::pair{"num_kv_heads", 1},
                                   std::pair{"state_size", 8}, std::pair{"gate_low_rank_dim", 4},
                                   std::pair{"chunk_size", 16}, std::pair{"rope_dim", 4}, std::pair{"num_v_heads", 4}})
    if (c.has(key)) c.set(key, value);
  // Optional parameters on (attention's biases, QK-norm and output gate), so every parameter is
  // tested.
  for (const char* key : {"qkv_bias", "o_bias", "qk_norm", "output_gate"})
    if (c.has(key)) c.set(key, true);
  return c;
}

inline ModelDims tiny_dims() {
  ModelDims d;
  d.d_model = kTestDModel;
  d.layer_idx = 0;
  d.n_layer = 2;
  return d;
}

}  // namespace lnx::modules::testing
