// Llama-style attention models of transformers: llama (LlamaForCausalLM), qwen2 (q/k/v
// biases) and qwen3 (per-head QK-norm). Each block: input_layernorm → self_attn (GQA, RoPE in
// the half-split layout, scale head_dim^-1/2) → residual → post_attention_layernorm → SwiGLU
// mlp (gate_proj, up_proj, down_proj) → residual; model.norm; lm_head (tied or not).
#include <fmt/format.h>

#include "models/hf/hf_internal.h"
#include "modules/attention/attention.h"
#include "modules/mlp.h"
#include "tensor/error.h"

namespace lnx::models::hf {

namespace {

enum class Flavour { llama, qwen2, qwen3 };

// Sliding-window keys of Qwen2/Qwen3: only full attention in every layer.
void read_sliding_window(ConfigReader& r, int64_t n_layer) {
  r.require("use_sliding_window", {false}, "sliding-window layers are not mapped yet");
  r.ignore({"sliding_window", "max_window_layers"});  // inert without use_sliding_window
  const Json& types = r.raw("layer_types");
  if (types.is_null()) return;
  if (!types.is_array() || static_cast<int64_t>(types.size()) != n_layer)
    r.fail("layer_types", fmt::format("must list the {} layers, got {}", n_layer, types.dump()));
  for (const Json& t : types)
    if (t != "full_attention") r.fail("layer_types", fmt::format("has {}: only full_attention is supported", t.dump()));
}

ModelConfig import_attention_model(ConfigReader& r, Flavour flavour) {
  ModelConfig c = import_sizes(r, "rms_norm_eps", 1e-6, false);
  c.mlp_hidden = r.integer("intermediate_size");
  r.require("hidden_act", {"silu"}, "the MLP is SwiGLU");
  r.require("mlp_bias", {false}, "the MLP has no biases");
  r.require("pretraining_tp", {1}, "tensor-parallel slicing of the projections");
  modules::AttentionConfig a = import_attention(r, c.d_model, 1.0);
  if (a.rope_dim != 0 && a.rope_dim != a.head_dim)
    r.fail("partial_rotary_factor",
           fmt::format("is not supported for {} (only 1)", flavour == Flavour::llama ? "llama" : "qwen"));
  const bool attention_bias = r.boolean("attention_bias", false);
  a.qkv_bias = flavour == Flavour::qwen2 ? true : attention_bias;
  a.o_bias = flavour == Flavour::qwen2 ? false : attention_bias;
  a.qk_norm = flavour == Flavour::qwen3;
  if (flavour != Flavour::llama) read_sliding_window(r, c.n_layer);
  LayerSpec layer = LayerSpec::of("attention");
  layer.options = a;
  layer.mlp = true;
  c.block_pattern = {"attention"};
  c.layers["attention"] = layer;
  return c;
}

Json export_attention_model(const std::string& type, const std::string& cls, const ModelConfig& c, Flavour flavour) {
  const LayerSpec layer = single_layer(c, type, "attention");
  LNX_CHECK(layer.mlp, ValueError, "[hf] {} blocks have an MLP; the model's attention blocks do not", type);
  const auto& a = layer.options.as<modules::AttentionConfig>();
  LNX_CHECK(a.window == 0, ValueError, "[hf] {}: sliding-window attention (window {}) is not exported", type, a.window);
  LNX_CHECK(a.rope_dim == 0 || a.rope_dim == (a.head_dim == 0 ? c.d_model / a.num_heads : a.head_dim), ValueError,
            "[hf] {} rotates every dim of a head; the model rotates {} (rope_dim)", type, a.rope_dim);
  switch (flavour) {
    case Flavour::llama:
    case Flavour::qwen3:
      LNX_CHECK(a.qkv_bias == a.o_bias, ValueError,
                "[hf] {} has one attention_bias for q, k, v and o; the model has qkv_bias {} and o_bias {}", type,
                a.qkv_bias, a.o_bias);
      LNX_CHECK(a.qk_norm == (flavour == Flavour::qwen3), ValueError, "[hf] {} {} QK-norm; the model {}", type,
                flavour == Flavour::qwen3 ? "has" : "has no", a.qk_norm ? "has" : "has none");
      break;
    case Flavour::qwen2:
      LNX_CHECK(a.qkv_bias && !a.o_bias && !a.qk_norm, ValueError,
                "[hf] qwen2 has q/k/v biases, no o bias and no QK-norm; the model has qkv_bias {}, o_bias {}, "
                "qk_norm {}",
                a.qkv_bias, a.o_bias, a.qk_norm);
      break;
  }
  Json j = common_export(type, cls, c);
  j["intermediate_size"] = c.mlp_hidden > 0 ? c.mlp_hidden : modules::swiglu_hidden(c.d_model, c.mlp_ratio);
  export_attention(j, a, c.d_model);
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = c.norm_eps;
  if (flavour == Flavour::llama) j["mlp_bias"] = false;
  if (flavour != Flavour::qwen2) j["attention_bias"] = a.qkv_bias;
  if (flavour != Flavour::llama) j["use_sliding_window"] = false;
  return j;
}

std::string attention_tensor_name(const ModelConfig&, const std::string& ours) {
  if (ours == "embeddings.weight") return "model.embed_tokens.weight";
  if (ours == "norm.weight") return "model.norm.weight";
  if (ours == "lm_head.weight") return ours;
  if (const auto part = block_part(ours)) {
    const std::string layer = "model.layers." + part->first + ".";
    const std::string& rest = part->second;
    if (rest == "attn_norm.weight") return layer + "input_layernorm.weight";
    if (rest == "mlp_norm.weight") return layer + "post_attention_layernorm.weight";
    if (rest.rfind("mixer.", 0) == 0) return layer + "self_attn." + rest.substr(6);
    if (rest.rfind("mlp.", 0) == 0) return layer + rest;
  }
  return ours;  // not a name of these models: reported as missing
}

Architecture attention_architecture(const std::string& type, const std::string& cls, Flavour flavour) {
  Architecture a;
  a.model_type = type;
  a.class_name = cls;
  a.import_config = [flavour](ConfigReader& r) { return import_attention_model(r, flavour); };
  a.export_config = [type, cls, flavour](const ModelConfig& c) {
    return export_attention_model(type, cls, c, flavour);
  };
  a.tensor_name = attention_tensor_name;
  return a;
}

}  // namespace

void add_llama_architectures(std::vector<Architecture>& out) {
  out.push_back(attention_architecture("llama", "LlamaForCausalLM", Flavour::llama));
  out.push_back(attention_architecture("qwen2", "Qwen2ForCausalLM", Flavour::qwen2));
  out.push_back(attention_architecture("qwen3", "Qwen3ForCausalLM", Flavour::qwen3));
}

}  // namespace lnx::models::hf
