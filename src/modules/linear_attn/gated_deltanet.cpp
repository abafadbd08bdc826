#include "modules/linear_attn/gated_deltanet.h"

#include <memory>
#include <utility>

#include "core/gating.h"
#include "tensor/ops.h"

namespace lnx::modules {

// Initialisations of fla's GatedDeltaNet: Linear weights N(0, init_std²) (the models'
// _init_weights), A_log = log U(0, 16), dt_bias = softplus⁻¹(dt) with dt log-uniform in
// [0.001, 0.1] clamped at 1e-4 (Mamba's), norm weights 1.
GatedDeltaNet::GatedDeltaNet(const GatedDeltaNetConfig& c, const ModelDims& dims, Generator& gen)
    : DeltaFamilyMixer(delta_dims("gated_deltanet", c, dims), c, dims.norm_eps, gen, dims.init_std),
      a_proj(add_module("a_proj", std::make_unique<Linear>(dims_.D, dims_.HV, false, gen, dims.init_std))),
      b_proj(add_module("b_proj", std::make_unique<Linear>(dims_.D, dims_.HV, false, gen, dims.init_std))),
      A_log(add_parameter("A_log", core::A_log_init(dims_.HV, gen, 0.0, 16.0))),
      dt_bias(add_parameter("dt_bias", core::dt_bias_init(dims_.HV, gen))) {
  add_gated_output(c.use_output_gate, gen, dims.init_std);
}

MixerOutput GatedDeltaNet::forward(const MixerInput& in) const {
  call_shape(in);  // validates x and cu_seqlens
  core::LayerState state;
  QKV p = project_qkv(in, state, {&b_proj, &a_proj});
  Tensor beta = sigmoid(p.extra[0]);                            // [B, T, H]
  Tensor g = core::softplus_decay(p.extra[1], A_log, dt_bias);  // [B, T, H], ≤ 0
  Tensor o = run_kernel("gated_delta_rule", {{"q", p.q}, {"k", p.k}, {"v", p.v}, {"beta", beta}, {"g", g}}, in,
                        state);  // [B, T, H, V]
  return {gated_output(o, p), std::move(state)};
}

double GatedDeltaNet::flops_per_token(int64_t) const {
  const double D = static_cast<double>(dims_.D), H = static_cast<double>(dims_.HV);
  const double decay = H * static_cast<double>(dims_.K * dims_.V);  // exp(g) · S
  return shared_flops() + decay + 2.0 * D * 2.0 * H + gated_output_flops();
}

MixerSpec gated_deltanet_mixer() {
  MixerSpec s;
  s.name = "gated_deltanet";
  s.description =
      "Gated DeltaNet (Yang et al. 2024): q/k/v proj -> short conv + SiLU -> L2-norm q, k; beta = sigmoid(b_proj x); "
      "g = -exp(A_log) softplus(a_proj x + dt_bias); gated delta rule; RMSNorm gated by silu(g_proj x); o_proj";
  s.kernel = "gated_delta_rule";
  s.defaults = GatedDeltaNetConfig{};
  s.preset_options = [](int64_t d, PresetScale scale) -> MixerConfig {
    GatedDeltaNetConfig c;
    set_delta_preset_sizes(c, d, scale);
    return c;
  };
  s.make = [](const MixerConfig& c, const ModelDims& d, Generator& gen) -> std::unique_ptr<Mixer> {
    return std::make_unique<GatedDeltaNet>(c.as<GatedDeltaNetConfig>(), d, gen);
  };
  return s;
}

}  // namespace lnx::modules
