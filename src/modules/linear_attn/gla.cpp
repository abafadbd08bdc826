#include "modules/linear_attn/gla.h"

#include "core/gating.h"
#include "kernels/mechanism.h"
#include "modules/linear_attn/linear_attention.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

// Parameters in fla's order; Linear weights ~ N(0, init_std²) with zero biases, norm weights 1
// (fla's _init_weights), conv weights PyTorch's Conv1d default (ShortConv).
GatedLinearAttention::GatedLinearAttention(const GlaConfig& config, const ModelDims& dims, int64_t K, int64_t V,
                                           Generator& gen)
    : q_proj(add_module("q_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * K, false, gen, dims.init_std))),
      k_proj(add_module("k_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * K, false, gen, dims.init_std))),
      v_proj(add_module("v_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * V, false, gen, dims.init_std))),
      config_(config),
      H_(config.num_heads),
      K_(K),
      V_(V) {
  const int64_t D = dims.d_model;
  if (config.use_output_gate)
    g_proj = &add_module("g_proj", std::make_unique<Linear>(D, H_ * V, false, gen, dims.init_std));
  if (config.use_short_conv) {
    // fla: ShortConvolution(activation = 'silu', bias = conv_bias = False).
    q_conv1d =
        &add_module("q_conv1d", std::make_unique<ShortConv>(H_ * K, config.conv_size, false, true, gen, dims.init_std));
    k_conv1d =
        &add_module("k_conv1d", std::make_unique<ShortConv>(H_ * K, config.conv_size, false, true, gen, dims.init_std));
    v_conv1d =
        &add_module("v_conv1d", std::make_unique<ShortConv>(H_ * V, config.conv_size, false, true, gen, dims.init_std));
  }
  gk_proj = &add_module("gk_proj",
                        std::make_unique<LowRankLinear>(D, config.gate_low_rank_dim, H_ * K, true, gen, dims.init_std));
  o_proj = &add_module("o_proj", std::make_unique<Linear>(H_ * V, D, false, gen, dims.init_std));
  if (config.use_output_gate)
    g_norm_swish_gate = &add_module("g_norm_swish_gate", std::make_unique<GatedRMSNorm>(V, dims.norm_eps, true));
  else
    g_norm = &add_module("g_norm", std::make_unique<RMSNorm>(V, dims.norm_eps));
}

MixerOutput GatedLinearAttention::forward(const MixerInput& in) const {
  call_shape(in);  // validates x and cu_seqlens
  const int64_t B = in.x.size(0), T = in.x.size(1);
  MixerOutput result;
  Tensor q = q_proj.forward(in.x);  // [B, T, H·K]
  Tensor k = k_proj.forward(in.x);  // [B, T, H·K]
  Tensor v = v_proj.forward(in.x);  // [B, T, H·V]
  if (q_conv1d) {
    q = q_conv1d->forward(q, in, "conv_q", result.state);
    k = k_conv1d->forward(k, in, "conv_k", result.state);
    v = v_conv1d->forward(v, in, "conv_v", result.state);
  }
  const Tensor gk = core::logsigmoid_gate(gk_proj->forward(in.x), config_.gate_logit_normalizer);  // [B, T, H·K]

  TensorDict inputs{{"q", reshape(q, {B, T, H_, K_})},
                    {"k", reshape(k, {B, T, H_, K_})},
                    {"v", reshape(v, {B, T, H_, V_})},
                    {"g", reshape(gk, {B, T, H_, K_})}};
  Tensor o = run_state_kernel("gla", std::move(inputs), in, config_.chunk_size, result.state);  // [B, T, H, V]
  if (g_proj)
    o = g_norm_swish_gate->forward(o, reshape(g_proj->forward(in.x), {B, T, H_, V_}));
  else
    o = g_norm->forward(o);
  result.y = o_proj->forward(reshape(o, {B, T, H_ * V_}));  // [B, T, D]
  return result;
}

double GatedLinearAttention::flops_per_token(int64_t /*context*/) const {
  const double D = static_cast<double>(q_proj.in_features());
  const double HK = static_cast<double>(H_ * K_), HV = static_cast<double>(H_ * V_);
  const double r = static_cast<double>(config_.gate_low_rank_dim);
  double weights = D * HK * 2 + D * HV * (g_proj ? 3 : 2) + r * (D + HK);  // q, k, v, (g), o, gk
  if (q_conv1d) weights += static_cast<double>(config_.conv_size) * (2 * HK + HV);
  return 2.0 * weights + 4.0 * HK * static_cast<double>(V_);  // + state update and read per head
}

MixerSpec gla_mixer() {
  MixerSpec spec;
  spec.name = "gla";
  spec.description =
      "Gated linear attention (Yang et al. 2023; fla GatedLinearAttention): q/k/v proj, optional short convs, "
      "low-rank gk_proj with logsigmoid/normalizer gate, gla kernel, swish-gated RMSNorm (g_proj), o_proj";
  spec.kernel = "gla";
  spec.defaults = GlaConfig{};
  // Presets: heads of 32 (tiny) or 64 (small) dims of the model width; keys of expand_k · d
  // (0.5 in fla), so head_dim stays 0.
  spec.preset_options = [](int64_t d, PresetScale scale) -> MixerConfig {
    GlaConfig c;
    c.num_heads = preset_num_heads(d, scale);
    return c;
  };
  spec.make = [](const MixerConfig& config, const ModelDims& dims, Generator& gen) -> std::unique_ptr<Mixer> {
    const auto& c = config.as<GlaConfig>();
    int64_t K = 0, V = 0;
    linear_attn_head_dims("gla", c.num_heads, c.head_dim, c.expand_k, c.expand_v, dims.d_model, K, V);
    LNX_CHECK(c.gate_low_rank_dim > 0, ValueError, "[gla] gate_low_rank_dim = {} must be positive",
              c.gate_low_rank_dim);
    LNX_CHECK(c.gate_logit_normalizer > 0, ValueError, "[gla] gate_logit_normalizer = {} must be positive",
              c.gate_logit_normalizer);
    LNX_CHECK(!c.use_short_conv || c.conv_size >= 2, ValueError, "[gla] conv_size = {} must be at least 2",
              c.conv_size);
    check_chunk_size("gla", c.chunk_size);
    return std::make_unique<GatedLinearAttention>(c, dims, K, V, gen);
  };
  return spec;
}

}  // namespace lnx::modules
