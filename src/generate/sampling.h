// Sampling: the options of a generation run and the choice of one token from logits [V].
// Order of operations on the logits of one step: repetition penalty (over the sequence's
// tokens so far) → greedy argmax (temperature 0) or temperature → top-k → top-p → one draw.
//
// Stop strings are matched against the text of the tokens generated in one run (each token
// decoded on its own and appended, which is the tokenizers' decode of all of them); the run
// ends with the token that completes a stop string, and the returned tokens include it. The
// stop text is NOT trimmed from the tokens (a token may straddle it): the caller decodes and
// trims with trim_at_stop_string.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "tensor/tensor.h"

namespace lnx::generate {

struct SamplingOptions {
  int64_t max_new_tokens = 128;
  double temperature = 1.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = all tokens
  double top_p = 1.0;        // nucleus: smallest set of tokens with probability ≥ top_p
  // CTRL / Hugging Face convention: for every token already in the sequence (prompt and
  // generated), logit > 0 → logit / p, else logit · p. 1 = off; > 1 discourages repeats.
  double repetition_penalty = 1.0;
  // Sequence i of a batch (or of a Session) draws from its own Generator seeded with
  // seed + i when it first samples.
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;            // generation ends after emitting one of these
  std::vector<std::string> stop_strings;       // … or once the generated text contains one
  const data::Tokenizer* tokenizer = nullptr;  // needed by stop_strings; ids it cannot decode are not drawn
};

// Throws ValueError naming the bad field (temperature ≥ 0, top_k ≥ 0, 0 < top_p ≤ 1,
// repetition_penalty > 0, max_new_tokens ≥ 0, a tokenizer when stop_strings are given,
// no empty stop string).
void check_options(const SamplingOptions& options);

// z [V] in place: the repetition penalty for every distinct token of history (ids outside
// [0, V) are ignored). penalty 1 leaves z unchanged.
void apply_repetition_penalty(std::vector<double>& z, const std::vector<int32_t>& history, double penalty);

// Picks the next token from logits [V] (f32 or f64) under the options, drawing from gen.
// history: the sequence's tokens so far (for the repetition penalty; may be empty).
// Draws exactly one gen.uniform() when temperature > 0 and none when greedy; sessions rely on
// this to save and restore a generator as (seed, number of draws).
int32_t sample_token(const Tensor& logits, const SamplingOptions& options, Generator& gen,
                     const std::vector<int32_t>& history = {});

// Incremental stop-string detection for one sequence: push each generated token; true once
// the text so far contains one of the stop strings. Only the tail that a new token can
// complete is searched, so the cost per token does not grow with the text.
class StopStringMatcher {
 public:
  explicit StopStringMatcher(const SamplingOptions& options);
  bool push(int32_t token);
  const std::string& text() const { return text_; }

 private:
  const data::Tokenizer* tokenizer_ = nullptr;
  std::vector<std::string> stops_;
  size_t longest_ = 0;
  std::string text_;
};

// text cut before the earliest occurrence of any stop string (unchanged when none occurs).
std::string trim_at_stop_string(const std::string& text, const std::vector<std::string>& stop_strings);

}  // namespace lnx::generate
