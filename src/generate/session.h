// Session: one model and the full state of one or more sequences (recurrent states, conv
// caches, KV caches, positions/seen), the logits of each sequence's last token, its tokens so
// far (prompt and generated, for the repetition penalty) and its sampling Generator. Prefill
// runs in chunk mode, steps and decoding in recurrent mode.
//
// Generators: sequence n's Generator is seeded with options.seed + n the first time it samples
// and continues from there in every later generate(); reseed() starts them over. So one
// generate() of 20 tokens equals generate() of 8 then generate() of 12, also across save()
// and load(), greedy or sampled.
//
// State file (save/load): one safetensors file (written atomically) holding every state
// tensor as "layers.<i>.<name>", "seen" [N], "logits" [N, V], "tokens" [Σ] with
// "token_counts" [N], and the generators as "generator_seeds" / "generator_draws" /
// "generator_seeded" [N] and "generator_state" [N · 6] (the generator's words, set on load:
// loading is linear in the file's size, every count bounded by what the file holds), plus
// metadata: format, version 2, the model fingerprint (model_fingerprint), the tokenizer
// fingerprint (tokenizer_fingerprint, or empty), layer count, mixers, vocabulary, dtype, config and a checksum of the
// tensors (state_file_checksum). A file from another model → ValueError naming the mismatch; a truncated, corrupted or
// inconsistent file → IOError.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/state.h"
#include "generate/sampling.h"
#include "models/lm_model.h"

namespace lnx::generate {

class Session {
 public:
  // num_sequences fresh sequences; the model must outlive the session.
  explicit Session(const models::LMModel& model, int64_t num_sequences = 1);

  int64_t num_sequences() const { return static_cast<int64_t>(tokens_.size()); }
  const models::LMModel& model() const { return *model_; }
  const core::ModelState& state() const { return state_; }
  const std::vector<int32_t>& tokens(int64_t seq = 0) const;  // prompt + generated so far
  Tensor logits(int64_t seq = 0) const;                       // [V] after its last token

  // ---- one sequence (num_sequences() == 1) ----
  // Feeds tokens (chunk mode); returns the logits [V] after the last one.
  Tensor prefill(const std::vector<int32_t>& tokens);
  // Feeds one token (recurrent mode); returns the logits [V] after it.
  Tensor step(int32_t token);
  // Samples up to options.max_new_tokens tokens from the current state and feeds each into it
  // (so the session continues after the last one). on_token(token) false stops.
  std::vector<int32_t> generate(const SamplingOptions& options, const std::function<bool(int32_t)>& on_token = {});

  // ---- every sequence ----
  // tokens[n] for sequence n, lengths may differ (one padded chunk-mode forward with a mask);
  // an empty list leaves that sequence as it is (not allowed before its first prefill).
  // Returns the logits [N, V] after each sequence's last token.
  Tensor prefill_batch(const std::vector<std::vector<int32_t>>& tokens);
  // One token per sequence ([N, 1] ids, recurrent mode); returns logits [N, V].
  Tensor step_batch(const std::vector<int32_t>& tokens);
  // Decodes every sequence together, one token per step; a sequence that is finished (stop
  // token, stop string, max_new_tokens, on_token false) is dropped from the batch (its state
  // rows are set aside and written back unchanged), so it is no longer reported or computed.
  std::vector<std::vector<int32_t>> generate_batch(
      const SamplingOptions& options, const std::function<bool(int64_t seq, int32_t token)>& on_token = {});

  // The next token of sequence seq from its current logits, its Generator (seeded with
  // options.seed + seq on first use) and the repetition penalty over its tokens. Does not feed it.
  int32_t sample(const SamplingOptions& options, int64_t seq = 0);
  // Sequence n's Generator restarts from seed + n.
  void reseed(uint64_t seed);

  // An independent deep copy (tensors cloned): continuing one does not change the other.
  Session fork() const;
  // A session of num_sequences() · copies sequences: sequence n · copies + j is a copy of
  // sequence n (its state, tokens and logits; a fresh Generator, seeded with options.seed + its
  // index on first use), so one prefill serves a group of samples.
  Session repeat(int64_t copies) const;

  // Defined in state_file.cpp. tokenizer: the tokenizer_fingerprint of the tokenizer that
  // made the tokens ("" = not known); a state saved with one is refused by load with another.
  void save(const std::string& path, const std::string& tokenizer = "") const;
  static Session load(const models::LMModel& model, const std::string& path, const std::string& tokenizer = "");

  // The decoding loop behind generate / generate_batch / the free functions. feed_last = false
  // skips feeding a sequence's final token (the free functions discard the session, so that
  // forward would be wasted); the session's state then lags its tokens and must not be reused.
  std::vector<std::vector<int32_t>> run(const SamplingOptions& options,
                                        const std::function<bool(int64_t, int32_t)>& on_token, bool feed_last);

 private:
  struct Sampler {
    uint64_t seed = 0;
    uint64_t draws = 0;  // uniform() calls so far (sample_token draws once per sampled token)
    bool seeded = false;
    Generator gen{0};
  };
  // Feeds tokens[j] to sequence rows[j] (rows may be a subset; the others keep their state).
  void feed(const std::vector<int64_t>& rows, const std::vector<std::vector<int32_t>>& tokens, core::Mode mode);
  void check_token(int32_t t) const;

  const models::LMModel* model_;
  core::ModelState state_;
  std::vector<Tensor> logits_;                // [V] per sequence (undefined before its prefill)
  std::vector<std::vector<int32_t>> tokens_;  // per sequence
  std::vector<Sampler> samplers_;
};

// A hash (FNV-1a 64, hex) of the model's config YAML, its parameter names and shapes, and its
// weights' bytes: a state continues only in the model that made it.
std::string model_fingerprint(const models::LMModel& model);

// A hash (FNV-1a 64, hex) of a tokenizer.json file's bytes (IOError when it cannot be read).
std::string tokenizer_fingerprint(const std::string& tokenizer_json_path);

// The checksum a state file's metadata carries: a hash of every tensor's name, dtype, shape and
// bytes (it catches flipped bits; tools that write state files compute it with this).
std::string state_file_checksum(const TensorDict& tensors);

}  // namespace lnx::generate
