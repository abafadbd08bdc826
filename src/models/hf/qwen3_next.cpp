// qwen3_next (Qwen3NextForCausalLM): Gated DeltaNet layers and gated attention layers, each
// followed by a sparse MoE (top-k experts + a sigmoid-gated shared expert) or, in mlp_only_layers,
// a dense SwiGLU. Every RMSNorm but the Gated DeltaNet's output norm is zero-centered (1 + w);
// a model of ours with plain norms is exported with its norm weights shifted by −1.
//
//   linear_attention: in_proj_qkvz, in_proj_ba, conv1d over [q, k, v], A_log, dt_bias, norm
//     (gated by z, before the gate), out_proj; q/k heads serve num_v_heads / num_k_heads value
//     heads each; q, k L2-normalised in the kernel.
//   full_attention: q_proj (query and gate interleaved per head), k_proj, v_proj, q_norm,
//     k_norm, RoPE on the first partial_rotary_factor of each head, sigmoid(gate) ⊙ output, o_proj.
//
// Its fused projections are split into ours on import (unfuse) and joined on export (fuse):
// in_proj_qkvz rows, per key head g, are [q_g (K), k_g (K), v_g (r·V), z_g (r·V)], r = HV / H;
// in_proj_ba rows, per key head, [b (r), a (r)]; conv1d rows [q (H·K), k (H·K), v (HV·V)]; q_proj
// rows, per head, [query (Dh), gate (Dh)].
#include <cmath>
#include <cstring>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/config.h"
#include "models/hf/hf_internal.h"
#include "modules/attention/attention.h"
#include "modules/linear_attn/gated_deltanet.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::models::hf {

namespace {

// The layer names of the pattern: mixer × MLP kind.
const char* layer_name(bool attention, bool moe) {
  return attention ? (moe ? "attention" : "attention_dense") : (moe ? "gdn" : "gdn_dense");
}

ModelConfig import_qwen3_next(ConfigReader& r) {
  ModelConfig c = import_sizes(r, "rms_norm_eps", 1e-6, false);
  c.mlp_hidden = r.integer("intermediate_size");
  c.zero_centered_norm = true;
  r.require("hidden_act", {"silu"}, "the MLPs are SwiGLU and the conv uses SiLU");
  r.require("output_router_logits", {false}, "the router's load-balancing loss is not implemented");
  r.ignore({"router_aux_loss_coef"});  // used only with output_router_logits

  modules::GatedDeltaNetConfig g;
  g.num_heads = r.integer("linear_num_key_heads", 16);
  g.num_v_heads = r.integer("linear_num_value_heads", 32);
  g.head_dim = r.integer("linear_key_head_dim", 128);
  const int64_t value_dim = r.integer("linear_value_head_dim", 128);
  g.expand_v = static_cast<double>(value_dim) / static_cast<double>(std::max<int64_t>(g.head_dim, 1));
  g.conv_size = r.integer("linear_conv_kernel_dim", 4);
  g.use_short_conv = g.use_output_gate = true;
  if (g.num_heads < 1 || g.num_v_heads % g.num_heads != 0)
    r.fail("linear_num_value_heads",
           fmt::format("= {} is not a multiple of linear_num_key_heads = {}", g.num_v_heads, g.num_heads));

  modules::AttentionConfig a = import_attention(r, c.d_model, 0.25, 16, 256);  // 0.25: transformers' default here
  a.qkv_bias = a.o_bias = r.boolean("attention_bias", false);
  a.qk_norm = a.output_gate = true;

  modules::MoeConfig moe;
  moe.num_experts = r.integer("num_experts", 512);
  moe.top_k = r.integer("num_experts_per_tok", 10);
  moe.expert_hidden = r.integer("moe_intermediate_size", 512);
  moe.shared_expert_hidden = r.integer("shared_expert_intermediate_size", 512);
  moe.norm_topk_prob = r.boolean("norm_topk_prob", true);
  moe.shared_expert_gate = true;
  const int64_t sparse_step = r.integer("decoder_sparse_step", 1);
  if (sparse_step < 1) r.fail("decoder_sparse_step", fmt::format("= {} must be >= 1", sparse_step));
  std::set<int64_t> dense;
  const Json& only = r.raw("mlp_only_layers");
  if (!only.is_null()) {
    if (!only.is_array()) r.fail("mlp_only_layers", fmt::format("must be a list, got {}", only.dump()));
    for (const Json& i : only) {
      if (!i.is_number_integer()) r.fail("mlp_only_layers", fmt::format("holds {}: expected layer indices", i.dump()));
      dense.insert(i.get<int64_t>());
    }
  }
  std::vector<bool> attention(static_cast<size_t>(c.n_layer));
  const Json& types = r.raw("layer_types");
  const int64_t interval = r.integer("full_attention_interval", 4);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    if (types.is_null()) {
      attention[i] = (i + 1) % interval == 0;
      continue;
    }
    if (!types.is_array() || static_cast<int64_t>(types.size()) != c.n_layer)
      r.fail("layer_types", fmt::format("must list the {} layers, got {}", c.n_layer, types.dump()));
    if (types[i] != "linear_attention" && types[i] != "full_attention")
      r.fail("layer_types", fmt::format("has {}: expected linear_attention or full_attention", types[i].dump()));
    attention[i] = types[i] == "full_attention";
  }

  c.block_pattern.clear();
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const bool is_moe = !dense.count(i) && moe.num_experts > 0 && (i + 1) % sparse_step == 0;
    const std::string name = layer_name(attention[i], is_moe);
    c.block_pattern.push_back(name);
    if (c.layers.count(name)) continue;
    LayerSpec layer = LayerSpec::of(attention[i] ? "attention" : "gated_deltanet");
    if (attention[i])
      layer.options = a;
    else
      layer.options = g;
    layer.mlp = true;
    if (is_moe) layer.moe = moe;
    c.layers[name] = layer;
  }
  return c;
}

// The one layer spec of every block named like `names[i]` in the pattern whose mixer is `mixer`.
std::optional<LayerSpec> uniform_layer(const ModelConfig& c, const std::string& mixer, bool moe) {
  std::optional<LayerSpec> found;
  const std::vector<std::string> names = c.layer_names();
  for (size_t i = 0; i < names.size(); ++i) {
    const LayerSpec l = c.layer(names[i]);
    if (l.mixer != mixer || (l.moe.num_experts > 0) != moe) continue;
    if (!found) {
      found = l;
      continue;
    }
    LNX_CHECK(core::to_yaml_string(found->options.to_yaml()) == core::to_yaml_string(l.options.to_yaml()), ValueError,
              "[hf] qwen3_next has one config for all {} blocks; block {} differs", mixer, i);
  }
  return found;
}

Json export_qwen3_next(const ModelConfig& c) {
  const std::vector<std::string> names = c.layer_names();
  Json types = Json::array(), dense = Json::array();
  std::optional<modules::MoeConfig> moe;
  for (size_t i = 0; i < names.size(); ++i) {
    const LayerSpec l = c.layer(names[i]);
    LNX_CHECK(l.mixer == "gated_deltanet" || l.mixer == "attention", ValueError,
              "[hf] qwen3_next has gated_deltanet and attention blocks only; block {} is {}", i, l.mixer);
    LNX_CHECK(l.mlp, ValueError, "[hf] qwen3_next has an MLP in every block; block {} has none", i);
    types.push_back(l.mixer == "attention" ? "full_attention" : "linear_attention");
    if (l.moe.num_experts == 0) {
      dense.push_back(static_cast<int64_t>(i));
    } else if (!moe) {
      moe = l.moe;
    } else {
      LNX_CHECK(core::to_yaml_string(core::write_config(*moe)) == core::to_yaml_string(core::write_config(l.moe)),
                ValueError, "[hf] qwen3_next has one MoE config; block {} differs", i);
    }
  }
  Json j = common_export("qwen3_next", "Qwen3NextForCausalLM", c);
  j["intermediate_size"] = c.mlp_hidden > 0 ? c.mlp_hidden : modules::swiglu_hidden(c.d_model, c.mlp_ratio);
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = c.norm_eps;
  j["layer_types"] = types;
  j["mlp_only_layers"] = dense;
  j["decoder_sparse_step"] = 1;
  j["num_experts"] = moe ? moe->num_experts : 0;
  if (moe) {
    LNX_CHECK(moe->shared_expert_hidden > 0 && moe->shared_expert_gate, ValueError,
              "[hf] qwen3_next's MoE has a gated shared expert");
    j["num_experts_per_tok"] = moe->top_k;
    j["moe_intermediate_size"] = moe->expert_hidden > 0 ? moe->expert_hidden : j["intermediate_size"].get<int64_t>();
    j["shared_expert_intermediate_size"] = moe->shared_expert_hidden;
    j["norm_topk_prob"] = moe->norm_topk_prob;
  }
  j["output_router_logits"] = false;
  for (bool with_moe : {true, false})
    if (const auto l = uniform_layer(c, "gated_deltanet", with_moe)) {
      const auto& g = l->options.as<modules::GatedDeltaNetConfig>();
      const int64_t K = g.head_dim == 0 ? c.d_model / g.num_heads : g.head_dim;
      LNX_CHECK(g.use_short_conv && g.use_output_gate, ValueError,
                "[hf] qwen3_next's Gated DeltaNet has the short conv and the output gate");
      j["linear_num_key_heads"] = g.num_heads;
      j["linear_num_value_heads"] = g.num_v_heads == 0 ? g.num_heads : g.num_v_heads;
      j["linear_key_head_dim"] = K;
      j["linear_value_head_dim"] = static_cast<int64_t>(std::lround(g.expand_v * static_cast<double>(K)));
      j["linear_conv_kernel_dim"] = g.conv_size;
    }
  for (bool with_moe : {true, false})
    if (const auto l = uniform_layer(c, "attention", with_moe)) {
      const auto& a = l->options.as<modules::AttentionConfig>();
      LNX_CHECK(a.qk_norm && a.output_gate && a.window == 0 && a.qkv_bias == a.o_bias, ValueError,
                "[hf] qwen3_next's attention has QK-norm, the output gate, no window and one attention_bias");
      export_attention(j, a, c.d_model);
      j["attention_bias"] = a.qkv_bias;
    }
  return j;
}

std::string qwen3_next_tensor_name(const ModelConfig& c, const std::string& ours) {
  if (ours == "embeddings.weight") return "model.embed_tokens.weight";
  if (ours == "norm.weight") return "model.norm.weight";
  if (ours == "lm_head.weight") return ours;
  if (const auto part = block_part(ours)) {
    const std::string layer = "model.layers." + part->first + ".";
    const std::string& rest = part->second;
    const std::vector<std::string> names = c.layer_names();
    const size_t i = static_cast<size_t>(std::stoll(part->first));
    if (rest == "attn_norm.weight") return layer + "input_layernorm.weight";
    if (rest == "mlp_norm.weight") return layer + "post_attention_layernorm.weight";
    if (rest.rfind("mlp.", 0) == 0) return layer + rest;
    if (rest.rfind("mixer.", 0) == 0 && i < names.size()) {
      const std::string p = rest.substr(6);
      if (c.layer(names[i]).mixer == "attention") return layer + "self_attn." + p;
      if (p == "o_norm.weight") return layer + "linear_attn.norm.weight";
      if (p == "o_proj.weight") return layer + "linear_attn.out_proj.weight";
      return layer + "linear_attn." + p;  // the unfused names
    }
  }
  return ours;
}

// ---- fused projections ----

struct Fusion {
  std::string fused;                // the checkpoint's tensor
  std::vector<std::string> parts;   // ours (unfused names)
  int64_t groups = 1;               // interleaved groups of rows (heads)
  std::vector<int64_t> group_rows;  // rows of each part within a group
};

// The fused tensors of each layer of c.
std::vector<Fusion> fusions(const ModelConfig& c) {
  std::vector<Fusion> out;
  const std::vector<std::string> names = c.layer_names();
  for (size_t i = 0; i < names.size(); ++i) {
    const LayerSpec l = c.layer(names[i]);
    const std::string layer = fmt::format("model.layers.{}.", i);
    if (l.mixer == "attention") {
      const auto& a = l.options.as<modules::AttentionConfig>();
      const int64_t Dh = a.head_dim == 0 ? c.d_model / a.num_heads : a.head_dim;
      for (const char* what : {"weight", "bias"}) {
        if (std::string(what) == "bias" && !a.qkv_bias) continue;
        const std::string base = layer + "self_attn.";
        out.push_back(
            {base + "q_proj." + what, {base + "q_proj." + what, base + "g_proj." + what}, a.num_heads, {Dh, Dh}});
      }
      continue;
    }
    const auto& g = l.options.as<modules::GatedDeltaNetConfig>();
    const int64_t H = g.num_heads, HV = g.num_v_heads == 0 ? H : g.num_v_heads, r = HV / H;
    const int64_t K = g.head_dim == 0 ? c.d_model / H : g.head_dim;
    const int64_t V = static_cast<int64_t>(std::lround(g.expand_v * static_cast<double>(K)));
    const std::string base = layer + "linear_attn.";
    out.push_back({base + "in_proj_qkvz.weight",
                   {base + "q_proj.weight", base + "k_proj.weight", base + "v_proj.weight", base + "g_proj.weight"},
                   H,
                   {K, K, r * V, r * V}});
    out.push_back({base + "in_proj_ba.weight", {base + "b_proj.weight", base + "a_proj.weight"}, H, {r, r}});
    out.push_back({base + "conv1d.weight",
                   {base + "q_conv1d.weight", base + "k_conv1d.weight", base + "v_conv1d.weight"},
                   1,
                   {H * K, H * K, HV * V}});
  }
  return out;
}

TensorDict unfuse(const ModelConfig& c, const TensorDict& hf) {
  std::set<std::string> fused;
  TensorDict out;
  for (const Fusion& f : fusions(c)) {
    if (!hf.contains(f.fused)) continue;  // reported as missing parts
    fused.insert(f.fused);
    const Tensor& t = hf.at(f.fused);  // [groups · Σ rows, …]
    int64_t per_group = 0;
    for (int64_t rows : f.group_rows) per_group += rows;
    LNX_CHECK(t.dim() >= 1 && t.size(0) == f.groups * per_group, ValueError,
              "[hf] '{}' has {} rows, expected {} ({} groups of {})", f.fused, t.dim() >= 1 ? t.size(0) : 0,
              f.groups * per_group, f.groups, per_group);
    Shape grouped = t.shape();
    grouped[0] = per_group;
    grouped.insert(grouped.begin(), f.groups);
    const TensorList parts = split(reshape(t, grouped), f.group_rows, 1);
    for (size_t p = 0; p < parts.size(); ++p) {
      Shape flat = t.shape();
      flat[0] = f.groups * f.group_rows[p];
      out.insert(f.parts[p], contiguous(reshape(parts[p], flat)));
    }
  }
  for (const auto& [name, t] : hf)
    if (!fused.count(name)) out.insert(name, t);
  return out;
}

TensorDict fuse(const ModelConfig& c, const TensorDict& ours) {
  std::set<std::string> used;
  TensorDict out;
  for (const Fusion& f : fusions(c)) {
    TensorList grouped;
    Shape flat;
    for (size_t p = 0; p < f.parts.size(); ++p) {
      const Tensor& t = ours.at(f.parts[p]);
      used.insert(f.parts[p]);
      Shape g = t.shape();
      g[0] = f.group_rows[p];
      g.insert(g.begin(), f.groups);
      grouped.push_back(reshape(t, g));
      flat = t.shape();
    }
    int64_t per_group = 0;
    for (int64_t rows : f.group_rows) per_group += rows;
    flat[0] = f.groups * per_group;
    out.insert(f.fused, contiguous(reshape(concat(grouped, 1), flat)));
  }
  // A model with plain RMSNorms (weight w, not 1 + w) is written with w − 1: the same function.
  auto zero_centered = [&](const std::string& name) {
    for (const char* suffix :
         {"input_layernorm.weight", "post_attention_layernorm.weight", "q_norm.weight", "k_norm.weight"})
      if (name.size() > std::strlen(suffix) &&
          name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
        return true;
    return name == "model.norm.weight";
  };
  for (const auto& [name, t] : ours)
    if (!used.count(name)) out.insert(name, !c.zero_centered_norm && zero_centered(name) ? sub(t, 1.0) : t);
  return out;
}

}  // namespace

void add_qwen3_next_architecture(std::vector<Architecture>& out) {
  out.push_back({"qwen3_next", "Qwen3NextForCausalLM", import_qwen3_next, export_qwen3_next, qwen3_next_tensor_name,
                 unfuse, fuse});
}

}  // namespace lnx::models::hf
