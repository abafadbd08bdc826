// ModelConfig: the whole description of an LMModel — sizes, the block pattern, and the layers
// it names. YAML form (config.yaml of a checkpoint):
//
//   name: local-global
//   vocab_size: 256
//   d_model: 64
//   n_layer: 4
//   block_pattern: [attn_local, attn_local, attn_local, attn_global]   # repeated to n_layer
//   layers:
//     attn_local: {mixer: attention, num_heads: 4, window: 512}
//     attn_global: {mixer: attention, num_heads: 4, mlp: true}
//
// A layer is a mixer type, that mixer's options (its own typed config, e.g.
// modules::AttentionConfig) and `mlp` (a SwiGLU MLP after the mixer; default: the mixer's
// recipe, modules::MixerSpec::block_mlp — Mamba blocks have none). `moe: {num_experts: 8,
// top_k: 2, …}` (modules::MoeConfig) makes that MLP a sparse mixture of experts. A name in block_pattern
// that is a registered mixer type and has no entry in `layers` (or an entry without `mixer:`)
// is that mixer, with its defaults overridden by the entry:
//
//   block_pattern: [gated_deltanet, attention]
//   layers:
//     attention: {window: 16}
//
// The older spelling `mixers:` (entries keyed by mixer type, `use_mlp` for the block's `mlp`)
// is read as such layer entries. `preset: hybrid-tiny` starts from a preset and the other keys
// override it. Options not given take the mixer's defaults (or the preset's); a key the mixer
// does not take, an unknown top-level key or a value of the wrong type is an error naming the
// key, the valid keys and the file position.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "modules/mixer.h"
#include "modules/moe.h"

namespace YAML {
class Node;
}

namespace lnx::models {

// One layer (block) of a model: its mixer and whether an MLP follows it.
struct LayerSpec {
  std::string mixer;             // a registered mixer type
  modules::MixerConfig options;  // that mixer's typed config
  bool mlp = true;               // a SwiGLU MLP after the mixer (pre-norm, residual)
  modules::MoeConfig moe;        // with moe.num_experts > 0 the MLP is a sparse MoE (modules/moe.h)

  // The mixer with its defaults and its recipe's MLP (ValueError for an unknown mixer).
  static LayerSpec of(const std::string& mixer);
};

struct ModelConfig {
  std::string name = "custom";
  int64_t vocab_size = 256;
  int64_t d_model = 64;
  int64_t n_layer = 2;
  std::vector<std::string> block_pattern = {"gated_deltanet"};
  double mlp_ratio = 4.0;  // SwiGLU hidden width from this (modules::swiglu_hidden)…
  int64_t mlp_hidden = 0;  // …unless set here
  bool tie_embeddings = true;
  double norm_eps = 1e-6;
  bool zero_centered_norm = false;  // the block, final and QK norms apply 1 + weight (Qwen3-Next)
  double init_std = 0.02;
  std::map<std::string, LayerSpec> layers;  // named layers (block_pattern's names)

  template <class Visitor> void visit(Visitor&& v) {
    v("name", name, "a label for the model");
    v("vocab_size", vocab_size, "tokens in the vocabulary");
    v("d_model", d_model, "model width");
    v("n_layer", n_layer, "blocks");
    v("block_pattern", block_pattern, "layer of each block (a name in layers, or a mixer type), repeated to n_layer");
    v("mlp_ratio", mlp_ratio, "SwiGLU hidden width ratio (flash-linear-attention's hidden_ratio)");
    v("mlp_hidden", mlp_hidden, "SwiGLU hidden width (0 = from mlp_ratio)");
    v("tie_embeddings", tie_embeddings, "the LM head shares the embedding matrix");
    v("norm_eps", norm_eps, "RMSNorm epsilon");
    v("zero_centered_norm", zero_centered_norm, "RMSNorm weights applied as 1 + weight, initialised to 0 (Qwen3-Next)");
    v("init_std", init_std, "standard deviation of linear and embedding weights");
  }

  // The layer name of each of the n_layer blocks.
  std::vector<std::string> layer_names() const;
  // The mixer type of each of the n_layer blocks.
  std::vector<std::string> layer_mixers() const;
  // A layer by name: layers[name], else the mixer type `name` with its defaults. ValueError
  // naming the layers and the mixers when it is neither.
  LayerSpec layer(const std::string& name) const;
  // Sizes positive; the pattern non-empty and made of layers or registered mixers; every
  // layer entry used by the pattern, of a registered mixer, with that mixer's options within
  // their bounds. Throws ValueError naming the field.
  void validate() const;
};

// YAML in and out (errors name `where`, e.g. the file, and the position). Written configs
// give every layer of the pattern in full (mixer, mlp and every option).
ModelConfig model_config_from_yaml(const YAML::Node& node, const std::string& where);
YAML::Node model_config_to_yaml(const ModelConfig& config);
ModelConfig load_model_config(const std::string& path);

}  // namespace lnx::models
