// LMModel: token embedding → blocks (mixers from block_pattern) → final RMSNorm → LM head
// (tied to the embedding unless tie_embeddings = false). Dimension letters: B batch, T time,
// D width, V vocabulary, N sequences, P packed tokens.
//
// Three input layouts, one result: ids [B, T] (every row a sequence); ids [B, T] with a mask
// [B, T] (padded rows; the model packs the real tokens once and unpacks the logits, zeros at
// padding); ids [1, P] with cu_seqlens (packed sequences). The state returned continues every
// sequence (decoding, split-and-resume).
#pragma once

#include <memory>
#include <vector>

#include "core/state.h"
#include "models/block.h"
#include "modules/linear.h"

namespace lnx::models {

struct ForwardOptions {
  Tensor mask;        // [B, T] 1 = real token (padded batch)
  Tensor cu_seqlens;  // [N + 1] packed sequences (ids [1, P])
  core::Mode mode = core::Mode::automatic;
  // Rematerialisation for training: each block's activations are recomputed in backward
  // instead of kept (less memory, ~1 more forward). The returned state is empty.
  bool remat = false;
  bool return_hidden = false;  // fill ModelOutput::hidden
};

struct ModelOutput {
  Tensor logits;           // [B, T, V]
  core::ModelState state;  // after the call's tokens
  Tensor hidden;           // [B, T, D] the final norm's output (return_hidden; e.g. for a value head)
};

class LMModel : public modules::Module {
 public:
  explicit LMModel(const ModelConfig& config, uint64_t seed = 0);
  // For loaders that replace every parameter: the model of config with its parameters' shapes,
  // but zeros where the constructor draws its random initialisation (modules::SkipInit) and no
  // init rescaling. Loading weights into it gives the model that loading them into
  // LMModel(config) gives, without the seconds a large model's random draws take.
  static std::unique_ptr<LMModel> for_loading(const ModelConfig& config);

  // state: null or empty for fresh sequences.
  ModelOutput forward(const Tensor& ids, const core::ModelState* state = nullptr,
                      const ForwardOptions& options = {}) const;
  // Mean next-token cross entropy of logits(ids) against targets [B, T] (ignore_index −100).
  Tensor loss(const Tensor& ids, const Tensor& targets, const ForwardOptions& options = {}) const;

  const ModelConfig& config() const { return config_; }
  const Block& block(size_t i) const { return *blocks_[i]; }
  size_t num_blocks() const { return blocks_.size(); }
  // Forward FLOPs per token at the given context (blocks + LM head; the embedding is a lookup).
  double flops_per_token(int64_t context) const;
  // Generation with smaller weights: every Linear and the LM head (the tied embedding matrix
  // too, as a head) packed to bf16 or int8 (tensor/cpu/packed_weight.h); f32 restores them.
  // The embedding lookup, norms, convolutions and the mixers' small parameters stay f32.
  void set_weight_format(WeightFormat format);
  WeightFormat weight_format() const { return weight_format_; }
  // Bytes of weights one decoded token reads: the packed (or f32) matrices and the other
  // parameters, less the embedding table (one row is read).
  int64_t weight_bytes_per_token() const;

  modules::Embedding* embeddings = nullptr;
  modules::RMSNorm* norm = nullptr;
  modules::Linear* lm_head = nullptr;  // null when tied

 private:
  LMModel(const ModelConfig& config, uint64_t seed, bool initialise);

  ModelConfig config_;
  std::vector<Block*> blocks_;
  WeightFormat weight_format_ = WeightFormat::f32;
  std::shared_ptr<const PackedWeight> tied_head_;  // the embedding matrix packed as the LM head
};

}  // namespace lnx::models
