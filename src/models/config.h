// ModelConfig: the whole description of an LMModel — sizes, the block pattern, and one
// MixerConfig per mixer type used. YAML form (config.yaml of a checkpoint):
//
//   name: hybrid-tiny
//   vocab_size: 256
//   d_model: 64
//   n_layer: 3
//   block_pattern: [gated_deltanet, gated_deltanet, attention]   # repeated to n_layer
//   mixers:
//     gated_deltanet: {num_heads: 2, head_dim: 32}
//     attention: {num_heads: 4, num_kv_heads: 2}
//
// `preset: hybrid-tiny` starts from a preset and the other keys override it.
// Mixer options not given take the mixer's defaults (its MixerSpec); a key the mixer does not
// accept, an unknown top-level key or a value of the wrong type is an error naming the key,
// the valid keys and the file position.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "modules/mixer.h"

namespace YAML {
class Node;
}

namespace lnx::models {

struct ModelConfig {
  std::string name = "custom";
  int64_t vocab_size = 256;
  int64_t d_model = 64;
  int64_t n_layer = 2;
  std::vector<std::string> block_pattern = {"gated_deltanet"};
  double mlp_ratio = 4.0;   // SwiGLU hidden width from this (modules::swiglu_hidden)…
  int64_t mlp_hidden = 0;   // …unless set here
  bool tie_embeddings = true;
  double norm_eps = 1e-6;
  double init_std = 0.02;
  std::map<std::string, modules::MixerConfig> mixers;  // options per mixer type

  template <class Visitor>
  void visit(Visitor&& v) {
    v("name", name, "a label for the model");
    v("vocab_size", vocab_size, "tokens in the vocabulary");
    v("d_model", d_model, "model width");
    v("n_layer", n_layer, "blocks");
    v("block_pattern", block_pattern, "mixer of each block, repeated to n_layer");
    v("mlp_ratio", mlp_ratio, "SwiGLU hidden width ratio (flash-linear-attention's hidden_ratio)");
    v("mlp_hidden", mlp_hidden, "SwiGLU hidden width (0 = from mlp_ratio)");
    v("tie_embeddings", tie_embeddings, "the LM head shares the embedding matrix");
    v("norm_eps", norm_eps, "RMSNorm epsilon");
    v("init_std", init_std, "standard deviation of linear and embedding weights");
  }

  // The mixer of each of the n_layer blocks.
  std::vector<std::string> layer_mixers() const;
  // The options of one mixer type: the mixer's defaults overridden by mixers[name].
  modules::MixerConfig mixer_config(const std::string& mixer) const;
  // Sizes positive, the pattern non-empty and made of registered mixers, mixers[] only for
  // mixers in the pattern. Throws ValueError naming the field.
  void validate() const;
};

// YAML in and out (errors name `where`, e.g. the file, and the position).
ModelConfig model_config_from_yaml(const YAML::Node& node, const std::string& where);
YAML::Node model_config_to_yaml(const ModelConfig& config);
ModelConfig load_model_config(const std::string& path);

}  // namespace lnx::models
