#include "modules/linear_attn/retnet.h"

#include "kernels/mechanism.h"
#include "modules/linear_attn/linear_attention.h"
#include "modules/rope.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

// Linear weights ~ N(0, init_std²), norm weights 1 (fla's _init_weights).
MultiScaleRetention::MultiScaleRetention(const RetNetConfig& config, const ModelDims& dims, int64_t K, int64_t V,
                                         Generator& gen)
    : q_proj(add_module("q_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * K, false, gen, dims.init_std))),
      k_proj(add_module("k_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * K, false, gen, dims.init_std))),
      v_proj(add_module("v_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * V, false, gen, dims.init_std))),
      o_proj(add_module("o_proj",
                        std::make_unique<Linear>(config.num_heads * V, dims.d_model, false, gen, dims.init_std))),
      config_(config),
      H_(config.num_heads),
      K_(K),
      V_(V) {
  if (config.use_output_gate) {
    g_proj = &add_module("g_proj", std::make_unique<Linear>(dims.d_model, H_ * V, false, gen, dims.init_std));
    // fla's FusedRMSNormGated: rmsnorm(o) ⊙ weight ⊙ swish(g).
    g_norm_swish_gate = &add_module("g_norm_swish_gate", std::make_unique<GatedRMSNorm>(V, dims.norm_eps, true));
  } else {
    g_norm = &add_module("g_norm", std::make_unique<RMSNorm>(V, dims.norm_eps));
  }
}

MixerOutput MultiScaleRetention::forward(const MixerInput& in) const {
  call_shape(in);  // validates x and cu_seqlens
  const int64_t B = in.x.size(0), T = in.x.size(1);
  // RoPE (half-split, as fla's RotaryEmbedding with interleaved = False) at each token's
  // position in its sequence, continuing from the tokens seen before this call.
  MixerOutput result;
  const Tensor pos = token_positions(B, T, in.cu_seqlens, sequence_positions(in, result.state));        // [B, T]
  const Tensor q = apply_rope(reshape(q_proj.forward(in.x), {B, T, H_, K_}), pos, config_.rope_theta);  // [B, T, H, K]
  const Tensor k = apply_rope(reshape(k_proj.forward(in.x), {B, T, H_, K_}), pos, config_.rope_theta);  // [B, T, H, K]
  const Tensor v = reshape(v_proj.forward(in.x), {B, T, H_, V_});                                       // [B, T, H, V]

  Tensor o = run_state_kernel("retention", {{"q", q}, {"k", k}, {"v", v}}, in, config_.chunk_size,
                              result.state);  // [B, T, H, V]
  if (g_proj)
    o = g_norm_swish_gate->forward(o, reshape(g_proj->forward(in.x), {B, T, H_, V_}));
  else
    o = g_norm->forward(o);
  result.y = o_proj.forward(reshape(o, {B, T, H_ * V_}));  // [B, T, D]
  return result;
}

double MultiScaleRetention::flops_per_token(int64_t /*context*/) const {
  const double D = static_cast<double>(q_proj.in_features());
  const double HK = static_cast<double>(H_ * K_), HV = static_cast<double>(H_ * V_);
  const double weights = D * HK * 2 + D * HV * (g_proj ? 3 : 2);  // q, k, v, (g), o projections
  return 2.0 * weights + 4.0 * HK * static_cast<double>(V_);      // + state update and read per head
}

MixerSpec retnet_mixer() {
  MixerSpec spec;
  spec.name = "retnet";
  spec.description =
      "RetNet multi-scale retention (Sun et al. 2023; fla MultiScaleRetention): q/k/v proj, RoPE on q, k, "
      "retention kernel with fixed per-head decays, swish-gated RMSNorm (g_proj), o_proj";
  spec.kernel = "retention";
  spec.defaults = RetNetConfig{};
  spec.preset_options = [](int64_t d, PresetScale scale) -> MixerConfig {
    RetNetConfig c;
    c.num_heads = preset_num_heads(d, scale);
    c.head_dim = preset_head_dim(scale);
    return c;
  };
  spec.make = [](const MixerConfig& config, const ModelDims& dims, Generator& gen) -> std::unique_ptr<Mixer> {
    const auto& c = config.as<RetNetConfig>();
    int64_t K = 0, V = 0;
    linear_attn_head_dims("retnet", c.num_heads, c.head_dim, c.expand_k, c.expand_v, dims.d_model, K, V);
    LNX_CHECK(K % 2 == 0, ValueError, "[retnet] the key dim per head {} must be even for RoPE", K);
    LNX_CHECK(c.rope_theta > 0, ValueError, "[retnet] rope_theta = {} must be positive", c.rope_theta);
    check_chunk_size("retnet", c.chunk_size);
    return std::make_unique<MultiScaleRetention>(c, dims, K, V, gen);
  };
  return spec;
}

}  // namespace lnx::modules
