// The strict config.json reader and the keys every architecture shares (hf_internal.h).
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "core/config.h"
#include "models/hf/hf_internal.h"
#include "tensor/error.h"

namespace lnx::models::hf {

std::optional<double> json_real(const Json& j) {
  if (j.is_number()) return j.get<double>();
  if (j.is_object() && j.size() == 1 && j.contains("__float__") && j["__float__"].is_string()) {
    const std::string s = j["__float__"].get<std::string>();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  }
  return std::nullopt;
}

ConfigReader::ConfigReader(Json json, std::string where) : json_(std::move(json)), where_(std::move(where)) {
  LNX_CHECK(json_.is_object(), ValueError, "[hf] {}: expected a JSON object, got {}", where_, json_.type_name());
}

void ConfigReader::fail(const std::string& key, const std::string& message) const {
  throw ValueError(fmt::format("[hf] {}: {} {}", where_, key, message));
}

bool ConfigReader::has(const std::string& key) const { return json_.contains(key) && !json_[key].is_null(); }

const Json& ConfigReader::raw(const std::string& key) {
  static const Json null_json;
  read_.insert(key);
  return json_.contains(key) ? json_[key] : null_json;
}

int64_t ConfigReader::integer(const std::string& key, std::optional<int64_t> fallback) {
  const Json& j = raw(key);
  if (j.is_null()) {
    if (!fallback) fail(key, "is missing");
    return *fallback;
  }
  if (!j.is_number_integer()) fail(key, fmt::format("must be an integer, got {}", j.dump()));
  return j.get<int64_t>();
}

double ConfigReader::real(const std::string& key, std::optional<double> fallback) {
  const Json& j = raw(key);
  if (j.is_null()) {
    if (!fallback) fail(key, "is missing");
    return *fallback;
  }
  const std::optional<double> v = json_real(j);
  if (!v) fail(key, fmt::format("must be a number, got {}", j.dump()));
  return *v;
}

bool ConfigReader::boolean(const std::string& key, std::optional<bool> fallback) {
  const Json& j = raw(key);
  if (j.is_null()) {
    if (!fallback) fail(key, "is missing");
    return *fallback;
  }
  if (!j.is_boolean()) fail(key, fmt::format("must be true or false, got {}", j.dump()));
  return j.get<bool>();
}

std::string ConfigReader::string(const std::string& key, std::optional<std::string> fallback) {
  const Json& j = raw(key);
  if (j.is_null()) {
    if (!fallback) fail(key, "is missing");
    return *fallback;
  }
  if (!j.is_string()) fail(key, fmt::format("must be a string, got {}", j.dump()));
  return j.get<std::string>();
}

void ConfigReader::require(const std::string& key, const std::vector<Json>& allowed, const std::string& why) {
  const Json& j = raw(key);
  if (j.is_null()) return;
  for (const Json& a : allowed)
    if (j == a || (json_real(j) && json_real(a) && *json_real(j) == *json_real(a))) return;
  std::string list;
  for (const Json& a : allowed) list += (list.empty() ? "" : ", ") + a.dump();
  fail(key, fmt::format("= {} is not supported ({}; supported: {})", j.dump(), why, list));
}

void ConfigReader::ignore(const std::vector<std::string>& keys) {
  for (const auto& k : keys) read_.insert(k);
}

void ConfigReader::finish() const {
  std::vector<std::string> unread;
  for (const auto& [key, value] : json_.items())
    if (!read_.count(key)) unread.push_back(key);
  if (unread.empty()) return;
  throw ValueError(
      fmt::format("[hf] {}: unknown key{} {} (LinearNexus reads every key of a config it loads, so that nothing "
                  "that changes the model is dropped; this one is not known for this model_type)",
                  where_, unread.size() > 1 ? "s" : "", fmt::join(unread, ", ")));
}

void ignore_common_keys(ConfigReader& r) {
  // Token ids, dtypes, versions, generation and output flags, initialisation: none changes
  // the function a loaded model computes.
  r.ignore({"architectures",
            "model_type",
            "transformers_version",
            "dtype",
            "torch_dtype",
            "bos_token_id",
            "eos_token_id",
            "pad_token_id",
            "sep_token_id",
            "decoder_start_token_id",
            "initializer_range",
            "use_cache",
            "output_attentions",
            "output_hidden_states",
            "return_dict",
            "_name_or_path",
            "_attn_implementation_autoset",
            "is_encoder_decoder",
            "torchscript",
            "use_return_dict",
            "chunk_size_feed_forward",
            "id2label",
            "label2id",
            "problem_type",
            "tokenizer_class",
            "task_specific_params",
            "max_position_embeddings"});
  for (const char* dropout : {"attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop"})
    r.require(dropout, {0, 0.0}, "dropout is not implemented");
}

Json common_export(const std::string& model_type, const std::string& class_name, const ModelConfig& c) {
  Json j;
  j["architectures"] = Json::array({class_name});
  j["model_type"] = model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.d_model;
  j["num_hidden_layers"] = c.n_layer;
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["initializer_range"] = c.init_std;
  j["dtype"] = "float32";
  j["max_position_embeddings"] = 1 << 20;  // positions have no limit here (RoPE or none)
  return j;
}

RopeSettings read_rope(ConfigReader& r, double default_partial) {
  RopeSettings rope;
  rope.theta = r.real("rope_theta", 10000.0);
  rope.partial_factor = r.real("partial_rotary_factor", default_partial);
  std::string type = "default";
  const Json& params = r.raw("rope_parameters");
  const Json& scaling = r.raw("rope_scaling");
  for (const Json* p : {&params, &scaling}) {
    if (p->is_null()) continue;
    const std::string key = p == &params ? "rope_parameters" : "rope_scaling";
    if (!p->is_object()) r.fail(key, fmt::format("must be an object, got {}", p->dump()));
    for (const auto& [k, v] : p->items()) {
      const std::optional<double> x = json_real(v);
      if (k == "rope_type" || k == "type") {
        if (!v.is_string() || (v != "default" && v != "linear" && v != "llama3"))
          r.fail(key + "." + k, fmt::format("= {} is not supported (default, linear, llama3)", v.dump()));
        type = v.get<std::string>();
        continue;
      }
      double* slot = k == "rope_theta"                         ? &rope.theta
                     : k == "partial_rotary_factor"            ? &rope.partial_factor
                     : k == "factor"                           ? &rope.scaling.factor
                     : k == "low_freq_factor"                  ? &rope.scaling.low_freq_factor
                     : k == "high_freq_factor"                 ? &rope.scaling.high_freq_factor
                     : k == "original_max_position_embeddings" ? &rope.scaling.original_context
                                                               : nullptr;
      if (!slot) r.fail(key + "." + k, "is not a RoPE setting LinearNexus knows");
      if (!x) r.fail(key + "." + k, fmt::format("must be a number, got {}", v.dump()));
      *slot = *x;
    }
  }
  rope.scaling.type = type == "default" ? "none" : type;
  if (!(rope.theta > 0)) r.fail("rope_theta", fmt::format("= {} must be positive", rope.theta));
  if (!(rope.partial_factor > 0 && rope.partial_factor <= 1))
    r.fail("partial_rotary_factor", fmt::format("= {} must lie in (0, 1]", rope.partial_factor));
  return rope;
}

void set_rope(const RopeSettings& rope, modules::AttentionConfig& a) {
  const int64_t Dh = a.head_dim;
  a.rope_theta = rope.theta;
  a.rope_dim =
      rope.partial_factor == 1.0 ? 0 : static_cast<int64_t>(std::lround(rope.partial_factor * static_cast<double>(Dh)));
  a.rope_scaling = rope.scaling.type;
  a.rope_scaling_factor = rope.scaling.factor;
  a.rope_low_freq_factor = rope.scaling.low_freq_factor;
  a.rope_high_freq_factor = rope.scaling.high_freq_factor;
  a.rope_original_context = static_cast<int64_t>(rope.scaling.original_context);
}

Json rope_parameters(const modules::AttentionConfig& a, int64_t head_dim) {
  Json j;
  j["rope_type"] = a.rope_scaling == "none" ? "default" : a.rope_scaling;
  j["rope_theta"] = a.rope_theta;
  if (a.rope_dim != 0 && a.rope_dim != head_dim)
    j["partial_rotary_factor"] = static_cast<double>(a.rope_dim) / static_cast<double>(head_dim);
  if (a.rope_scaling != "none") j["factor"] = a.rope_scaling_factor;
  if (a.rope_scaling == "llama3") {
    j["low_freq_factor"] = a.rope_low_freq_factor;
    j["high_freq_factor"] = a.rope_high_freq_factor;
    j["original_max_position_embeddings"] = a.rope_original_context;
  }
  return j;
}

ModelConfig import_sizes(ConfigReader& r, const char* eps_key, double eps_default, bool tie_default) {
  ModelConfig c;
  c.vocab_size = r.integer("vocab_size");
  c.d_model = r.integer("hidden_size");
  c.n_layer = r.integer("num_hidden_layers");
  c.tie_embeddings = r.boolean("tie_word_embeddings", tie_default);
  c.norm_eps = r.real(eps_key, eps_default);
  c.init_std = r.real("initializer_range", 0.02);
  return c;
}

modules::AttentionConfig import_attention(ConfigReader& r, int64_t d_model, double default_partial,
                                          std::optional<int64_t> default_heads,
                                          std::optional<int64_t> default_head_dim) {
  modules::AttentionConfig a;
  a.num_heads = r.integer("num_attention_heads", default_heads);
  a.num_kv_heads = r.integer("num_key_value_heads", a.num_heads);
  a.head_dim = r.integer("head_dim", default_head_dim  ? *default_head_dim
                                     : a.num_heads > 0 ? d_model / a.num_heads
                                                       : 0);
  set_rope(read_rope(r, default_partial), a);
  return a;
}

void export_attention(Json& j, const modules::AttentionConfig& a, int64_t d_model) {
  const int64_t H = a.num_heads, Dh = a.head_dim == 0 ? d_model / H : a.head_dim;
  j["num_attention_heads"] = H;
  j["num_key_value_heads"] = a.num_kv_heads == 0 ? H : a.num_kv_heads;
  j["head_dim"] = Dh;
  j["rope_parameters"] = rope_parameters(a, Dh);
  j["attention_dropout"] = 0.0;
}

std::optional<std::pair<std::string, std::string>> block_part(const std::string& ours) {
  const std::string prefix = "blocks.";
  if (ours.rfind(prefix, 0) != 0) return std::nullopt;
  const size_t dot = ours.find('.', prefix.size());
  if (dot == std::string::npos) return std::nullopt;
  return std::pair{ours.substr(prefix.size(), dot - prefix.size()), ours.substr(dot + 1)};
}

LayerSpec single_layer(const ModelConfig& c, const std::string& model_type, const std::string& mixer) {
  const std::vector<std::string> names = c.layer_names();
  const LayerSpec first = c.layer(names.at(0));
  for (const auto& name : names) {
    const LayerSpec l = c.layer(name);
    LNX_CHECK(l.mixer == mixer, ValueError, "[hf] {} has only {} blocks, but the model's pattern has a {} block",
              model_type, mixer, l.mixer);
    LNX_CHECK(l.mlp == first.mlp &&
                  core::to_yaml_string(l.options.to_yaml()) == core::to_yaml_string(first.options.to_yaml()),
              ValueError, "[hf] {} has one layer config for all blocks, but layers '{}' and '{}' differ", model_type,
              names.at(0), name);
  }
  return first;
}

}  // namespace lnx::models::hf
