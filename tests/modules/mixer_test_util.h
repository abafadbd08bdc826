// Shared by the registry-driven mixer tests: tiny configurations of every registered mixer and
// helpers to run one on a batch.
#pragma once

#include <string>

#include "modules/mixer.h"

namespace lnx::modules::testing {

constexpr int64_t kTestDModel = 16;

inline bool accepts(const MixerSpec& spec, const std::string& key) {
  for (const auto& k : spec.keys)
    if (k == key) return true;
  return false;
}

// The mixer's defaults with small sizes for every size key it accepts (heads 2, head dim 8,
// state 8, KV heads 1, chunk 16 so that ~40 tokens span several chunks).
inline MixerConfig tiny_config(const MixerSpec& spec) {
  MixerConfig c = spec.defaults;
  auto has = [&](const char* key) { return accepts(spec, key); };
  if (has("num_heads")) c.num_heads = 2;
  if (has("head_dim")) c.head_dim = 8;
  if (has("num_kv_heads")) c.num_kv_heads = 1;
  if (has("state_size")) c.state_size = 8;
  if (has("gate_low_rank_dim")) c.gate_low_rank_dim = 4;
  if (has("chunk_size")) c.chunk_size = 16;
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
