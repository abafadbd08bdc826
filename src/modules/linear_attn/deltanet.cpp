#include "modules/linear_attn/deltanet.h"

#include <cmath>
#include <memory>
#include <utility>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

DeltaDims delta_dims(const char* mixer, const DeltaFamilyConfig& c, const ModelDims& dims) {
  DeltaDims d;
  d.D = dims.d_model;
  d.H = c.num_heads;
  LNX_CHECK(d.D >= 1, ValueError, "[{}] d_model = {} must be positive", mixer, d.D);
  LNX_CHECK(d.H >= 1, ValueError, "[{}] num_heads = {} must be positive", mixer, d.H);
  LNX_CHECK(c.head_dim >= 0, ValueError, "[{}] head_dim = {} must be positive (or 0 = d_model / num_heads)", mixer,
            c.head_dim);
  if (c.head_dim == 0) {
    LNX_CHECK(d.D % d.H == 0, ValueError,
              "[{}] num_heads = {} does not divide d_model = {} (set head_dim to choose the key dim per head)", mixer,
              d.H, d.D);
    d.K = d.D / d.H;
  } else {
    d.K = c.head_dim;
  }
  // fla's layers require expand_v · head_dim to be an integer (the value dim per head).
  const double v = c.expand_v * static_cast<double>(d.K);
  LNX_CHECK(c.expand_v > 0 && std::abs(v - std::round(v)) < 1e-6 && std::round(v) >= 1, ValueError,
            "[{}] expand_v = {} times head_dim = {} is {}: the value dim per head must be a positive integer", mixer,
            c.expand_v, d.K, v);
  d.V = static_cast<int64_t>(std::round(v));
  d.HV = c.num_v_heads == 0 ? d.H : c.num_v_heads;
  LNX_CHECK(d.HV >= d.H && d.HV % d.H == 0, ValueError, "[{}] num_v_heads = {} is not a multiple of num_heads = {}",
            mixer, c.num_v_heads, d.H);
  LNX_CHECK(!c.use_short_conv || c.conv_size >= 1, ValueError, "[{}] conv_size = {} must be at least 1", mixer,
            c.conv_size);
  check_chunk_size(mixer, c.chunk_size);
  return d;
}

// ---- the shared parts ----

DeltaFamilyMixer::DeltaFamilyMixer(const DeltaDims& d, const DeltaFamilyConfig& c, double norm_eps, Generator& gen,
                                   double init_std)
    : q_proj(add_module("q_proj", std::make_unique<Linear>(d.D, d.H * d.K, false, gen, init_std))),
      k_proj(add_module("k_proj", std::make_unique<Linear>(d.D, d.H * d.K, false, gen, init_std))),
      v_proj(add_module("v_proj", std::make_unique<Linear>(d.D, d.HV * d.V, false, gen, init_std))),
      dims_(d),
      chunk_size_(c.chunk_size),
      norm_eps_(norm_eps) {
  if (c.use_short_conv) {
    // fla: ShortConvolution(activation='silu', bias=False) on each of q, k, v.
    q_conv1d = &add_module("q_conv1d", std::make_unique<ShortConv>(d.H * d.K, c.conv_size, false, true, gen, init_std));
    k_conv1d = &add_module("k_conv1d", std::make_unique<ShortConv>(d.H * d.K, c.conv_size, false, true, gen, init_std));
    v_conv1d =
        &add_module("v_conv1d", std::make_unique<ShortConv>(d.HV * d.V, c.conv_size, false, true, gen, init_std));
  }
}

DeltaFamilyMixer::QKV DeltaFamilyMixer::project_qkv(const MixerInput& in, core::LayerState& state,
                                                    const std::vector<const Linear*>& extra) const {
  std::vector<const Linear*> group{&q_proj, &k_proj, &v_proj};
  group.insert(group.end(), extra.begin(), extra.end());
  if (out_gate_) group.push_back(out_gate_);
  TensorList y = linear_group(in.x, group);
  Tensor q = y[0];  // [B, T, H·K]
  Tensor k = y[1];  // [B, T, H·K]
  Tensor v = y[2];  // [B, T, H·V]
  if (q_conv1d) {
    q = q_conv1d->forward(q, in, "conv_q", state);
    k = k_conv1d->forward(k, in, "conv_k", state);
    v = v_conv1d->forward(v, in, "conv_v", state);
  } else {
    // Without the convs fla still applies the SiLU the convs would have applied.
    q = silu(q);
    k = silu(k);
    v = silu(v);
  }
  QKV out{heads(q, dims_.K), heads(k, dims_.K), heads(v, dims_.V),
          TensorList(y.begin() + 3, y.begin() + 3 + static_cast<std::ptrdiff_t>(extra.size())),
          out_gate_ ? y.back() : Tensor()};
  if (dims_.HV != dims_.H) {
    // Grouped value attention: q/k head h serves value heads h·r … h·r + r − 1, r = HV / H.
    auto repeat = [&](const Tensor& t) {  // [B, T, H, K] → [B, T, HV, K]
      const int64_t B = t.size(0), T = t.size(1), r = dims_.HV / dims_.H;
      return reshape(expand(unsqueeze(t, 3), {B, T, dims_.H, r, dims_.K}), {B, T, dims_.HV, dims_.K});
    };
    out.q = repeat(out.q);
    out.k = repeat(out.k);
  }
  return out;
}

Tensor DeltaFamilyMixer::run_kernel(const std::string& kernel, TensorDict inputs, const MixerInput& in,
                                    core::LayerState& state) const {
  kernels::MechanismOptions opt;
  opt.set("use_qk_l2norm", true);  // fla: use_qk_l2norm_in_kernel=True, x / sqrt(Σx² + 1e-6)
  return run_state_kernel(kernel, std::move(inputs), in, chunk_size_, state, opt);  // [B, T, H, V]
}

void DeltaFamilyMixer::add_gated_output(bool use_output_gate, Generator& gen, double init_std) {
  const int64_t D = dims_.D, HV = dims_.HV * dims_.V;
  if (use_output_gate) {
    out_gate_ = &add_module("g_proj", std::make_unique<Linear>(D, HV, false, gen, init_std));
    gated_norm_ = &add_module("o_norm", std::make_unique<GatedRMSNorm>(dims_.V, norm_eps_, true));
  } else {
    plain_norm_ = &add_module("o_norm", std::make_unique<RMSNorm>(dims_.V, norm_eps_));
  }
  out_proj_ = &add_module("o_proj", std::make_unique<Linear>(HV, D, false, gen, init_std));
}

Tensor DeltaFamilyMixer::gated_output(const Tensor& o, const QKV& p) const {
  const Tensor normed = out_gate_ ? gated_norm_->forward(o, heads(p.gate, dims_.V)) : plain_norm_->forward(o);
  return out_proj_->forward(merge_heads(normed));
}

double DeltaFamilyMixer::gated_output_flops() const {
  const double D = static_cast<double>(dims_.D), HV = static_cast<double>(dims_.HV * dims_.V);
  return (out_gate_ ? 2.0 * D * HV : 0.0) + 2.0 * HV * D;
}

Tensor DeltaFamilyMixer::heads(const Tensor& x, int64_t dim) const {
  return reshape(x, {x.size(0), x.size(1), -1, dim});
}

Tensor DeltaFamilyMixer::merge_heads(const Tensor& o) const { return reshape(o, {o.size(0), o.size(1), -1}); }

double DeltaFamilyMixer::shared_flops() const {
  const double D = static_cast<double>(dims_.D), H = static_cast<double>(dims_.H);
  const double K = static_cast<double>(dims_.K), V = static_cast<double>(dims_.V);
  const double channels = H * (2 * K + V);
  double f = 2.0 * D * channels;  // q, k, v projections
  if (q_conv1d) f += 2.0 * static_cast<double>(q_conv1d->width()) * channels;
  return f + 6.0 * H * K * V;  // kernel: Sᵀk, the rank-one write, the read
}

// ---- DeltaNet ----

DeltaNet::DeltaNet(const DeltaNetConfig& c, const ModelDims& dims, Generator& gen)
    : DeltaFamilyMixer(delta_dims("deltanet", c, dims), c, dims.norm_eps, gen, dims.init_std),
      b_proj(add_module("b_proj", std::make_unique<Linear>(dims_.D, dims_.HV, false, gen, dims.init_std))) {
  add_gated_output(c.use_output_gate, gen, dims.init_std);
}

MixerOutput DeltaNet::forward(const MixerInput& in) const {
  call_shape(in);  // validates x and cu_seqlens
  core::LayerState state;
  QKV p = project_qkv(in, state, {&b_proj});
  Tensor beta = sigmoid(p.extra[0]);  // [B, T, H]
  Tensor o = run_kernel("delta_rule", {{"q", p.q}, {"k", p.k}, {"v", p.v}, {"beta", beta}}, in, state);
  return {gated_output(o, p), std::move(state)};
}

double DeltaNet::flops_per_token(int64_t) const {
  const double D = static_cast<double>(dims_.D);
  return shared_flops() + 2.0 * D * static_cast<double>(dims_.HV) + gated_output_flops();
}

void set_delta_preset_sizes(DeltaFamilyConfig& c, int64_t d, PresetScale scale) {
  c.num_heads = preset_num_heads(d, scale);
  c.head_dim = preset_head_dim(scale);
}

MixerSpec deltanet_mixer() {
  MixerSpec s;
  s.name = "deltanet";
  s.description =
      "DeltaNet (Yang et al. 2024): q/k/v proj -> short conv + SiLU -> L2-norm q, k; beta = sigmoid(b_proj x); "
      "delta rule; (gated) RMSNorm; o_proj";
  s.kernel = "delta_rule";
  s.defaults = DeltaNetConfig{};
  s.preset_options = [](int64_t d, PresetScale scale) -> MixerConfig {
    DeltaNetConfig c;
    set_delta_preset_sizes(c, d, scale);
    return c;
  };
  s.make = [](const MixerConfig& c, const ModelDims& d, Generator& gen) -> std::unique_ptr<Mixer> {
    return std::make_unique<DeltaNet>(c.as<DeltaNetConfig>(), d, gen);
  };
  return s;
}

}  // namespace lnx::modules
