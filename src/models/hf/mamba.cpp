// The state-space models of transformers: mamba (MambaForCausalLM) and mamba2
// (Mamba2ForCausalLM). Each block: norm → mixer → residual, no MLP; backbone.norm_f; lm_head
// (tied by default for mamba). The mixers' parameters carry the same names as ours
// (in_proj, conv1d, x_proj, dt_proj, dt_bias, A_log, D, norm, out_proj).
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "models/hf/hf_internal.h"
#include "modules/ssm/mamba.h"
#include "modules/ssm/mamba2.h"
#include "tensor/error.h"

namespace lnx::models::hf {

namespace {

// Keys of both: sizes, norms and what the mixers do not support.
ModelConfig import_ssm_model(ConfigReader& r, const std::string& mixer, bool tie_default) {
  ModelConfig c = import_sizes(r, "layer_norm_epsilon", 1e-5, tie_default);
  r.require("hidden_act", {"silu"}, "the conv and the gate use SiLU");
  r.require("use_bias", {false}, "in_proj and out_proj have no biases");
  r.require("use_conv_bias", {true}, "the conv has a bias");
  // Initialisation and precision settings: they do not change the function of given weights.
  r.ignore({"time_step_min", "time_step_max", "time_step_floor", "time_step_init_scheme", "time_step_scale",
            "rescale_prenorm_residual", "residual_in_fp32", "use_mambapy", "use_associative_scan"});
  c.block_pattern = {mixer};
  return c;
}

int64_t read_expand(ConfigReader& r, const ModelConfig& c) {
  const double expand = r.real("expand", 2.0);
  if (r.has("intermediate_size")) {
    const int64_t inner = r.integer("intermediate_size");
    if (static_cast<double>(inner) != expand * static_cast<double>(c.d_model))
      r.fail("intermediate_size", fmt::format("= {} is not expand {} × hidden_size {}", inner, expand, c.d_model));
  }
  return static_cast<int64_t>(expand);
}

ModelConfig import_mamba(ConfigReader& r) {
  ModelConfig c = import_ssm_model(r, "mamba", true);
  modules::MambaConfig m;
  m.state_size = r.integer("state_size", 16);
  m.expand = r.real("expand", 2.0);
  read_expand(r, c);
  m.conv_size = r.integer("conv_kernel", 4);
  const Json& rank = r.raw("time_step_rank");
  if (rank.is_string() && rank == "auto")
    m.dt_rank = (c.d_model + 15) / 16;
  else
    m.dt_rank = r.integer("time_step_rank", (c.d_model + 15) / 16);
  LayerSpec layer = LayerSpec::of("mamba");
  layer.options = m;
  layer.mlp = false;
  c.layers["mamba"] = layer;
  return c;
}

ModelConfig import_mamba2(ConfigReader& r) {
  ModelConfig c = import_ssm_model(r, "mamba2", false);
  modules::Mamba2Config m;
  m.state_size = r.integer("state_size", 128);
  m.expand = r.real("expand", 2.0);
  read_expand(r, c);
  m.head_dim = r.integer("head_dim", 64);
  const int64_t heads = r.integer("num_heads", 128);
  const double inner = m.expand * static_cast<double>(c.d_model);
  if (static_cast<double>(heads * m.head_dim) != inner)
    r.fail("num_heads", fmt::format("= {} times head_dim {} is not the inner width expand × hidden_size = {}", heads,
                                    m.head_dim, inner));
  m.n_groups = r.integer("n_groups", 1);
  m.conv_size = r.integer("conv_kernel", 4);
  m.norm_eps = c.norm_eps;  // one layer_norm_epsilon for the block norms and the gated norm
  r.require("rms_norm", {true}, "the gated norm is an RMSNorm");
  r.require("norm_before_gate", {false}, "the gate is applied before the norm");
  const Json& limit = r.raw("time_step_limit");
  if (!limit.is_null()) {
    const bool unclamped = limit.is_array() && limit.size() == 2 && json_real(limit[0]) == 0.0 &&
                           json_real(limit[1]) == std::numeric_limits<double>::infinity();
    if (!unclamped) r.fail("time_step_limit", fmt::format("= {} is not supported (only [0, inf])", limit.dump()));
  }
  r.ignore({"chunk_size", "time_step_rank"});  // the scan's block size; unused by Mamba-2
  LayerSpec layer = LayerSpec::of("mamba2");
  layer.options = m;
  layer.mlp = false;
  c.layers["mamba2"] = layer;
  return c;
}

Json export_ssm_common(const std::string& type, const std::string& cls, const ModelConfig& c, const LayerSpec& layer) {
  LNX_CHECK(!layer.mlp, ValueError, "[hf] {} blocks have no MLP; the model's {} blocks do", type, layer.mixer);
  Json j = common_export(type, cls, c);
  j["layer_norm_epsilon"] = c.norm_eps;
  j["hidden_act"] = "silu";
  j["use_bias"] = false;
  j["use_conv_bias"] = true;
  return j;
}

Json export_mamba(const ModelConfig& c) {
  const LayerSpec layer = single_layer(c, "mamba", "mamba");
  const auto& m = layer.options.as<modules::MambaConfig>();
  LNX_CHECK(m.expand == std::floor(m.expand), ValueError, "[hf] mamba: expand must be whole, the model has {}",
            m.expand);
  Json j = export_ssm_common("mamba", "MambaForCausalLM", c, layer);
  j["state_size"] = m.state_size;
  j["expand"] = static_cast<int64_t>(m.expand);
  j["intermediate_size"] = static_cast<int64_t>(m.expand) * c.d_model;
  j["conv_kernel"] = m.conv_size;
  j["time_step_rank"] = m.dt_rank == 0 ? (c.d_model + 15) / 16 : m.dt_rank;
  return j;
}

Json export_mamba2(const ModelConfig& c) {
  const LayerSpec layer = single_layer(c, "mamba2", "mamba2");
  const auto& m = layer.options.as<modules::Mamba2Config>();
  LNX_CHECK(m.expand == std::floor(m.expand), ValueError, "[hf] mamba2: expand must be whole, the model has {}",
            m.expand);
  LNX_CHECK(m.norm_eps == c.norm_eps, ValueError,
            "[hf] mamba2 has one layer_norm_epsilon for the block norms and the gated norm; the model has "
            "norm_eps {} and mamba2 norm_eps {}",
            c.norm_eps, m.norm_eps);
  const int64_t E = static_cast<int64_t>(m.expand) * c.d_model;
  const int64_t P = m.head_dim == 0 ? std::min<int64_t>(64, E) : m.head_dim;
  Json j = export_ssm_common("mamba2", "Mamba2ForCausalLM", c, layer);
  j["state_size"] = m.state_size;
  j["expand"] = static_cast<int64_t>(m.expand);
  j["head_dim"] = P;
  j["num_heads"] = E / P;
  j["n_groups"] = m.n_groups;
  j["conv_kernel"] = m.conv_size;
  j["rms_norm"] = true;
  j["chunk_size"] = m.chunk_size;
  j["time_step_limit"] = Json::array({0.0, {{"__float__", "Infinity"}}});
  return j;
}

std::string ssm_tensor_name(const ModelConfig&, const std::string& ours) {
  if (ours == "embeddings.weight") return "backbone.embeddings.weight";
  if (ours == "norm.weight") return "backbone.norm_f.weight";
  if (ours == "lm_head.weight") return ours;
  if (const auto part = block_part(ours)) {
    const std::string layer = "backbone.layers." + part->first + ".";
    if (part->second == "attn_norm.weight") return layer + "norm.weight";
    if (part->second.rfind("mixer.", 0) == 0) return layer + part->second;
  }
  return ours;
}

}  // namespace

void add_mamba_architectures(std::vector<Architecture>& out) {
  out.push_back({"mamba", "MambaForCausalLM", import_mamba, export_mamba, ssm_tensor_name, {}, {}});
  out.push_back({"mamba2", "Mamba2ForCausalLM", import_mamba2, export_mamba2, ssm_tensor_name, {}, {}});
}

}  // namespace lnx::models::hf
