// Generation from an LMModel: the prompt is prefilled in one chunk-mode call, then tokens are
// decoded one at a time in recurrent mode from the model state (constant work per token for
// recurrent layers; attention layers read their KV cache). Sampling: greedy (temperature 0),
// temperature, top-k, top-p, seeded.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "models/lm_model.h"

namespace lnx::generate {

struct SamplingOptions {
  int64_t max_new_tokens = 128;
  double temperature = 1.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = all tokens
  double top_p = 1.0;        // nucleus: smallest set of tokens with probability ≥ top_p
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;  // generation ends after emitting one of these
};

// Picks the next token from logits [V] (f32 or f64) under the options, drawing from gen.
int32_t sample_token(const Tensor& logits, const SamplingOptions& options, Generator& gen);

// Returns the new tokens (not the prompt). on_token(token) is called as each is produced;
// returning false stops generation.
std::vector<int32_t> generate(const models::LMModel& model, const std::vector<int32_t>& prompt,
                              const SamplingOptions& options,
                              const std::function<bool(int32_t)>& on_token = {});

}  // namespace lnx::generate
