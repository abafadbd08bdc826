// Internal to models/hf: the strict config.json reader and the architecture table.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "models/config.h"
#include "modules/attention/attention.h"
#include "modules/rope.h"

namespace lnx::models::hf {

using Json = nlohmann::ordered_json;

// Reads config.json keys by type and remembers which were read, so that finish() can name
// every key nobody looked at: nothing in a config is silently ignored. Errors read
// "[hf] <where>: <key> …". Reals accept transformers' {"__float__": "Infinity"} spelling.
class ConfigReader {
 public:
  ConfigReader(Json json, std::string where);
  bool has(const std::string& key) const;  // present and not null
  int64_t integer(const std::string& key, std::optional<int64_t> fallback = std::nullopt);
  double real(const std::string& key, std::optional<double> fallback = std::nullopt);
  bool boolean(const std::string& key, std::optional<bool> fallback = std::nullopt);
  std::string string(const std::string& key, std::optional<std::string> fallback = std::nullopt);
  const Json& raw(const std::string& key);  // null when absent
  // The key, if present, must equal one of the allowed values (e.g. hidden_act "silu").
  void require(const std::string& key, const std::vector<Json>& allowed, const std::string& why);
  // Keys that do not change the model's function (initialisation ranges, token ids, …).
  void ignore(const std::vector<std::string>& keys);
  // ValueError naming the keys never read.
  void finish() const;
  const std::string& where() const { return where_; }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  Json json_;
  std::string where_;
  std::set<std::string> read_;
};

// A number read from JSON: a number, or {"__float__": "Infinity" | "-Infinity" | "NaN"}.
std::optional<double> json_real(const Json& j);

// One model_type.
struct Architecture {
  std::string model_type;  // "llama"
  std::string class_name;  // "LlamaForCausalLM"
  // config.json → ModelConfig (reads every key it understands; load_config calls finish()).
  std::function<ModelConfig(ConfigReader&)> import_config;
  // ModelConfig → config.json; ValueError naming what the architecture cannot express.
  std::function<Json(const ModelConfig&)> export_config;
  // The tensor name in the HF checkpoint of one of our parameters of a model of this config
  // ("blocks.3.mixer.q_proj.weight" → "model.layers.3.self_attn.q_proj.weight").
  std::function<std::string(const ModelConfig& config, const std::string& ours)> tensor_name;
  // Optional, for checkpoints that fuse projections we keep apart: the checkpoint's tensors →
  // tensors named one-to-one with ours (tensor_name's names), and back. Null: the same names.
  std::function<TensorDict(const ModelConfig& config, const TensorDict& hf)> unfuse;
  std::function<TensorDict(const ModelConfig& config, const TensorDict& ours)> fuse;
};

const std::vector<Architecture>& architectures();
const Architecture& architecture(const std::string& model_type, const std::string& where);

// The architectures, one function per file.
void add_llama_architectures(std::vector<Architecture>& out);      // llama, qwen2, qwen3
void add_mamba_architectures(std::vector<Architecture>& out);      // mamba, mamba2
void add_bamba_architecture(std::vector<Architecture>& out);       // bamba (Mamba-2 + attention)
void add_qwen3_next_architecture(std::vector<Architecture>& out);  // qwen3_next (GDN + attention + MoE)

// Shared by the architectures: the config keys every transformers config carries that do not
// change the function (token ids, dtype, versions, output flags, …).
void ignore_common_keys(ConfigReader& r);
// The common keys of an exported config.json (model_type, architectures, vocab_size,
// hidden_size, num_hidden_layers, tie_word_embeddings, dtype, transformers_version).
Json common_export(const std::string& model_type, const std::string& class_name, const ModelConfig& c);
// RoPE of an attention config.json: the base from rope_parameters (transformers ≥ 5) or
// rope_theta / rope_scaling (older), the rotated share of each head (partial_rotary_factor;
// default_partial when the config does not say), and the frequency scaling (rope_type default,
// linear or llama3; others are an error).
struct RopeSettings {
  double theta = 10000.0;
  double partial_factor = 1.0;
  modules::RopeScaling scaling;
};
RopeSettings read_rope(ConfigReader& r, double default_partial = 1.0);
// The attention config's RoPE fields from the settings (rope_dim from head_dim), and back as
// rope_parameters.
void set_rope(const RopeSettings& rope, modules::AttentionConfig& a);
Json rope_parameters(const modules::AttentionConfig& a, int64_t head_dim);
// The sizes every architecture has: vocab_size, hidden_size, num_hidden_layers,
// tie_word_embeddings (default tie_default), the norm eps (under eps_key), initializer_range.
ModelConfig import_sizes(ConfigReader& r, const char* eps_key, double eps_default, bool tie_default);
// An attention layer's heads (num_attention_heads, num_key_value_heads, head_dim: default
// d_model / heads) and RoPE (read_rope with default_partial); biases and norms are the caller's.
// default_heads, default_head_dim: transformers' class defaults, for configs that may omit them.
modules::AttentionConfig import_attention(ConfigReader& r, int64_t d_model, double default_partial,
                                          std::optional<int64_t> default_heads = std::nullopt,
                                          std::optional<int64_t> default_head_dim = std::nullopt);
// And back: num_attention_heads, num_key_value_heads, head_dim, rope_parameters, attention_dropout.
void export_attention(Json& j, const modules::AttentionConfig& a, int64_t d_model);
// "blocks.<i>.<rest>" → (i, rest); nullopt for another name.
std::optional<std::pair<std::string, std::string>> block_part(const std::string& ours);
// The one layer of a model whose every block is the same layer; ValueError naming the
// architecture and the pattern otherwise.
LayerSpec single_layer(const ModelConfig& c, const std::string& model_type, const std::string& mixer);

}  // namespace lnx::models::hf
