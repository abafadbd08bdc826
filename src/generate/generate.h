// Generation from an LMModel: the prompt is prefilled in one chunk-mode call, then tokens are
// decoded one at a time in recurrent mode from the model state (constant work per token for
// recurrent layers; attention layers read their KV cache). Sampling (sampling.h): greedy
// (temperature 0), temperature, top-k, top-p, repetition penalty, seeds, stop tokens, stop
// strings. Streaming: the on_token callbacks, or the pull-style TokenStream
// (token_stream.h). Saving, restoring and forking a sequence's state: Session (session.h).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "generate/sampling.h"
#include "models/lm_model.h"

namespace lnx::generate {

// Returns the new tokens (not the prompt). on_token(token) is called as each is produced;
// returning false stops generation (that token is still returned). Draws from a Generator
// seeded with options.seed.
std::vector<int32_t> generate(const models::LMModel& model, const std::vector<int32_t>& prompt,
                              const SamplingOptions& options, const std::function<bool(int32_t)>& on_token = {});

// Several prompts of different lengths: one padded chunk-mode prefill (mask), then one
// recurrent step per token for all unfinished sequences together ([B', 1] ids with their state
// rows). Sequence i draws from its own Generator seeded with options.seed + i, so result[i]
// equals generate(model, prompts[i], options with seed + i) (up to floating-point rounding of
// the batched forward, which cannot change a token except on an exact tie). A sequence that is
// finished (stop token or string, max_new_tokens, on_token false) is dropped from the batch:
// it is neither computed nor reported any more. on_token(seq, token) is called per token, in
// sequence order within a step.
std::vector<std::vector<int32_t>> generate_batch(const models::LMModel& model,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 const SamplingOptions& options,
                                                 const std::function<bool(int64_t seq, int32_t token)>& on_token = {});

// Groups of samples for post-training: `group` completions of each prompt, result[p][j]. With
// fork_prompt, each prompt is prefilled once (all prompts in one padded chunk-mode call) and
// its state repeated `group` times (Session::repeat); without, every sample prefills its own
// copy of the prompt. Either way the samples are decoded together, sample p · group + j
// drawing from a Generator seeded with options.seed + p · group + j, so the two give the same
// tokens (up to rounding that can only change an exact tie).
std::vector<std::vector<std::vector<int32_t>>> generate_groups(const models::LMModel& model,
                                                               const std::vector<std::vector<int32_t>>& prompts,
                                                               int64_t group, const SamplingOptions& options,
                                                               bool fork_prompt = true);

}  // namespace lnx::generate
