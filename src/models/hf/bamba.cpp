// bamba (BambaForCausalLM): a dense hybrid of Mamba-2 and attention layers. Every layer:
// input_layernorm → mamba (a Mamba-2 mixer) or self_attn (GQA, RoPE on the first half of each
// head) → residual → pre_ff_layernorm → SwiGLU feed_forward → residual; model.final_layernorm;
// lm_head. attn_layer_indices lists the attention layers. One rms_norm_eps serves every norm,
// the Mamba-2 gated norm included.
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/config.h"
#include "models/hf/hf_internal.h"
#include "modules/attention/attention.h"
#include "modules/mlp.h"
#include "modules/ssm/mamba2.h"
#include "tensor/error.h"

namespace lnx::models::hf {

namespace {

ModelConfig import_bamba(ConfigReader& r) {
  ModelConfig c = import_sizes(r, "rms_norm_eps", 1e-5, false);
  c.mlp_hidden = r.integer("intermediate_size");
  r.require("hidden_act", {"silu"}, "the MLP is SwiGLU and the conv uses SiLU");
  r.require("mlp_bias", {false}, "the MLP has no biases");
  r.require("mamba_proj_bias", {false}, "in_proj and out_proj have no biases");
  r.require("mamba_conv_bias", {true}, "the conv has a bias");
  r.require("z_loss_coefficient", {0, 0.0}, "the z-loss of Bamba's training is not implemented");
  r.ignore({"num_logits_to_keep", "mamba_chunk_size"});  // how many logits generation keeps; scan blocks
  const Json& limit = r.raw("time_step_limit");
  if (!limit.is_null()) {
    const bool unclamped = limit.is_array() && limit.size() == 2 && json_real(limit[0]) == 0.0 &&
                           json_real(limit[1]) == std::numeric_limits<double>::infinity();
    if (!unclamped) r.fail("time_step_limit", fmt::format("= {} is not supported (only [0, inf])", limit.dump()));
  }

  modules::Mamba2Config m;
  m.expand = static_cast<double>(r.integer("mamba_expand", 2));
  const int64_t heads = r.integer("mamba_n_heads", 128);
  const Json& d_head = r.raw("mamba_d_head");
  m.head_dim = d_head.is_string() && d_head == "auto"
                   ? static_cast<int64_t>(m.expand) * c.d_model / std::max<int64_t>(heads, 1)
                   : r.integer("mamba_d_head");
  if (heads * m.head_dim != static_cast<int64_t>(m.expand) * c.d_model)
    r.fail("mamba_n_heads", fmt::format("= {} times mamba_d_head {} is not mamba_expand × hidden_size = {}", heads,
                                        m.head_dim, static_cast<int64_t>(m.expand) * c.d_model));
  m.n_groups = r.integer("mamba_n_groups", 1);
  m.state_size = r.integer("mamba_d_state", 256);
  m.conv_size = r.integer("mamba_d_conv", 4);
  m.norm_eps = c.norm_eps;

  // transformers hard-codes Bamba's partial rotary factor 0.5; a config may also state it.
  modules::AttentionConfig a = import_attention(r, c.d_model, 0.5);
  a.qkv_bias = a.o_bias = r.boolean("attention_bias", false);

  std::set<int64_t> attention_layers;
  const Json& indices = r.raw("attn_layer_indices");
  if (!indices.is_null()) {
    if (!indices.is_array()) r.fail("attn_layer_indices", fmt::format("must be a list, got {}", indices.dump()));
    for (const Json& i : indices) {
      if (!i.is_number_integer() || i.get<int64_t>() < 0 || i.get<int64_t>() >= c.n_layer)
        r.fail("attn_layer_indices", fmt::format("holds {}: expected layer indices below {}", i.dump(), c.n_layer));
      attention_layers.insert(i.get<int64_t>());
    }
  }
  const Json& types = r.raw("layers_block_type");  // the same information, when a config spells it out
  if (!types.is_null())
    for (int64_t i = 0; i < c.n_layer; ++i) {
      const std::string want = attention_layers.count(i) ? "full_attention" : "linear_attention";
      if (!types.is_array() || static_cast<int64_t>(types.size()) != c.n_layer || types[i] != want)
        r.fail("layers_block_type", fmt::format("= {} disagrees with attn_layer_indices", types.dump()));
    }
  c.block_pattern.clear();
  for (int64_t i = 0; i < c.n_layer; ++i) c.block_pattern.push_back(attention_layers.count(i) ? "attention" : "mamba2");
  LayerSpec mamba = LayerSpec::of("mamba2"), attention = LayerSpec::of("attention");
  mamba.options = m;
  mamba.mlp = attention.mlp = true;
  attention.options = a;
  if (attention_layers.size() < static_cast<size_t>(c.n_layer)) c.layers["mamba2"] = mamba;
  if (!attention_layers.empty()) c.layers["attention"] = attention;
  return c;
}

Json export_bamba(const ModelConfig& c) {
  const std::vector<std::string> names = c.layer_names();
  std::optional<LayerSpec> mamba, attention;
  Json indices = Json::array();
  for (size_t i = 0; i < names.size(); ++i) {
    const LayerSpec l = c.layer(names[i]);
    LNX_CHECK(l.mixer == "mamba2" || l.mixer == "attention", ValueError,
              "[hf] bamba has mamba2 and attention blocks only; block {} is {}", i, l.mixer);
    LNX_CHECK(l.mlp, ValueError, "[hf] bamba has an MLP in every block; block {} has none", i);
    std::optional<LayerSpec>& slot = l.mixer == "mamba2" ? mamba : attention;
    if (!slot)
      slot = l;
    else
      LNX_CHECK(core::to_yaml_string(slot->options.to_yaml()) == core::to_yaml_string(l.options.to_yaml()), ValueError,
                "[hf] bamba has one config for all {} blocks; block {} differs", l.mixer, i);
    if (l.mixer == "attention") indices.push_back(static_cast<int64_t>(i));
  }
  Json j = common_export("bamba", "BambaForCausalLM", c);
  j["intermediate_size"] = c.mlp_hidden > 0 ? c.mlp_hidden : modules::swiglu_hidden(c.d_model, c.mlp_ratio);
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = c.norm_eps;
  j["attn_layer_indices"] = indices;
  j["mlp_bias"] = false;
  j["mamba_proj_bias"] = false;
  j["mamba_conv_bias"] = true;
  if (mamba) {
    const auto& m = mamba->options.as<modules::Mamba2Config>();
    LNX_CHECK(m.expand == std::floor(m.expand), ValueError, "[hf] bamba: mamba_expand must be whole, the model has {}",
              m.expand);
    LNX_CHECK(m.norm_eps == c.norm_eps, ValueError,
              "[hf] bamba has one rms_norm_eps for every norm; the model has norm_eps {} and mamba2 norm_eps {}",
              c.norm_eps, m.norm_eps);
    const int64_t E = static_cast<int64_t>(m.expand) * c.d_model;
    const int64_t P = m.head_dim == 0 ? std::min<int64_t>(64, E) : m.head_dim;
    j["mamba_expand"] = static_cast<int64_t>(m.expand);
    j["mamba_n_heads"] = E / P;
    j["mamba_d_head"] = P;
    j["mamba_n_groups"] = m.n_groups;
    j["mamba_d_state"] = m.state_size;
    j["mamba_d_conv"] = m.conv_size;
    j["mamba_chunk_size"] = m.chunk_size;
    j["time_step_limit"] = Json::array({0.0, {{"__float__", "Infinity"}}});
  }
  if (attention) {
    const auto& a = attention->options.as<modules::AttentionConfig>();
    const int64_t Dh = a.head_dim == 0 ? c.d_model / a.num_heads : a.head_dim;
    LNX_CHECK(a.window == 0 && !a.qk_norm && !a.output_gate && a.qkv_bias == a.o_bias, ValueError,
              "[hf] bamba's attention has no window, no QK-norm, no output gate and one attention_bias");
    LNX_CHECK(a.rope_dim == Dh / 2, ValueError,
              "[hf] bamba rotates half of each head (rope_dim {}); the model rotates {}", Dh / 2,
              a.rope_dim == 0 ? Dh : a.rope_dim);
    export_attention(j, a, c.d_model);
    j["attention_bias"] = a.qkv_bias;
  }
  return j;
}

std::string bamba_tensor_name(const ModelConfig& c, const std::string& ours) {
  if (ours == "embeddings.weight") return "model.embed_tokens.weight";
  if (ours == "norm.weight") return "model.final_layernorm.weight";
  if (ours == "lm_head.weight") return ours;
  if (const auto part = block_part(ours)) {
    const std::string layer = "model.layers." + part->first + ".";
    const std::string& rest = part->second;
    const std::vector<std::string> names = c.layer_names();
    const size_t i = static_cast<size_t>(std::stoll(part->first));
    if (rest == "attn_norm.weight") return layer + "input_layernorm.weight";
    if (rest == "mlp_norm.weight") return layer + "pre_ff_layernorm.weight";
    if (rest.rfind("mlp.", 0) == 0) return layer + "feed_forward." + rest.substr(4);
    if (rest.rfind("mixer.", 0) == 0 && i < names.size())
      return layer + (c.layer(names[i]).mixer == "attention" ? "self_attn." : "mamba.") + rest.substr(6);
  }
  return ours;
}

}  // namespace

void add_bamba_architecture(std::vector<Architecture>& out) {
  out.push_back({"bamba", "BambaForCausalLM", import_bamba, export_bamba, bamba_tensor_name, {}, {}});
}

}  // namespace lnx::models::hf
