#include "modules/linear_attn/kda.h"

#include <memory>
#include <utility>

#include "core/gating.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

namespace {
// The rank of f_proj and g_proj: gate_low_rank_dim, 0 = V (fla uses head_v_dim).
int64_t gate_rank(const KdaConfig& c, const DeltaDims& d) {
  LNX_CHECK(c.gate_low_rank_dim >= 0, ValueError,
            "[kda] gate_low_rank_dim = {} must be positive (or 0 = the value dim per head)", c.gate_low_rank_dim);
  return c.gate_low_rank_dim == 0 ? d.V : c.gate_low_rank_dim;
}
}  // namespace

// Initialisations of fla's KDA model (_init_weights of KDAPreTrainedModel): Linear weights
// N(0, init_std²) and biases 0, A_log = log U(1, 16), dt_bias = softplus⁻¹(dt) with dt
// log-uniform in [0.001, 0.1] clamped at 1e-4 (Mamba's), norm weight 1.
KimiDeltaAttention::KimiDeltaAttention(const KdaConfig& c, const ModelDims& dims, Generator& gen)
    : DeltaFamilyMixer(delta_dims("kda", c, dims), c, dims.norm_eps, gen, dims.init_std),
      f_proj(add_module("f_proj", std::make_unique<LowRankLinear>(dims_.D, gate_rank(c, dims_), dims_.H * dims_.K,
                                                                  false, gen, dims.init_std))),
      b_proj(add_module("b_proj", std::make_unique<Linear>(dims_.D, dims_.H, false, gen, dims.init_std))),
      A_log(add_parameter("A_log", core::A_log_init(dims_.H, gen, 1.0, 16.0))),
      dt_bias(add_parameter("dt_bias", core::dt_bias_init(dims_.H * dims_.K, gen))),
      g_proj(c.use_output_gate
                 ? &add_module("g_proj", std::make_unique<LowRankLinear>(dims_.D, gate_rank(c, dims_),
                                                                         dims_.H * dims_.V, true, gen, dims.init_std))
                 : nullptr),
      o_norm(add_module("o_norm", std::make_unique<RMSNorm>(dims_.V, norm_eps_))),
      o_proj(add_module("o_proj", std::make_unique<Linear>(dims_.H * dims_.V, dims_.D, false, gen, dims.init_std))) {}

MixerOutput KimiDeltaAttention::forward(const MixerInput& in) const {
  call_shape(in);  // validates x and cu_seqlens
  core::LayerState state;
  QKV p = project_qkv(in, state, {&b_proj});
  Tensor beta = sigmoid(p.extra[0]);  // [B, T, H]
  // fla's naive_kda_gate: −exp(A_log[h]) · softplus(f + dt_bias[h, :]), per head and key dim.
  Tensor g = core::softplus_decay(heads(f_proj.forward(in.x), dims_.K), reshape(A_log, {dims_.H, 1}),
                                  reshape(dt_bias, {dims_.H, dims_.K}));  // [B, T, H, K], ≤ 0
  Tensor o = run_kernel("kda", {{"q", p.q}, {"k", p.k}, {"v", p.v}, {"beta", beta}, {"g", g}}, in,
                        state);  // [B, T, H, V]
  o = o_norm.forward(o);
  if (g_proj) o = mul(o, sigmoid(heads(g_proj->forward(in.x), dims_.V)));
  return {o_proj.forward(merge_heads(o)), std::move(state)};
}

double KimiDeltaAttention::flops_per_token(int64_t) const {
  const double D = static_cast<double>(dims_.D), H = static_cast<double>(dims_.H);
  const double R = static_cast<double>(rank());
  const double HK = static_cast<double>(dims_.H * dims_.K), HV = static_cast<double>(dims_.H * dims_.V);
  const double decay = H * static_cast<double>(dims_.K * dims_.V);  // Diag(exp(g)) · S
  double f = shared_flops() + decay + 2.0 * D * H + 2.0 * (D * R + R * HK) + 2.0 * HV * D;
  if (g_proj) f += 2.0 * (D * R + R * HV);
  return f;
}

MixerSpec kda_mixer() {
  MixerSpec s;
  s.name = "kda";
  s.description =
      "Kimi Delta Attention (Kimi Linear, 2025): q/k/v proj -> short conv + SiLU -> L2-norm q, k; beta = "
      "sigmoid(b_proj x); per-key-dim g = -exp(A_log) softplus(f_proj x + dt_bias) (low rank); kda; RMSNorm "
      "gated by sigmoid(g_proj x); o_proj";
  s.kernel = "kda";
  s.defaults = KdaConfig{};
  s.preset_options = [](int64_t d, PresetScale scale) -> MixerConfig {
    KdaConfig c;
    set_delta_preset_sizes(c, d, scale);
    return c;
  };
  s.make = [](const MixerConfig& c, const ModelDims& d, Generator& gen) -> std::unique_ptr<Mixer> {
    return std::make_unique<KimiDeltaAttention>(c.as<KdaConfig>(), d, gen);
  };
  return s;
}

}  // namespace lnx::modules
