#include "modules/linear_attn/hgrn2.h"

#include <cmath>

#include "kernels/mechanism.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

// Linear weights ~ N(0, init_std²), g_norm weight 1 (fla's _init_weights), conv weights
// PyTorch's Conv1d default (ShortConv).
HGRN2Attention::HGRN2Attention(const Hgrn2Config& config, const ModelDims& dims, int64_t K, Generator& gen)
    : q_proj(add_module("q_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * K, false, gen, dims.init_std))),
      f_proj(add_module("f_proj",
                        std::make_unique<Linear>(dims.d_model, config.num_heads * K, false, gen, dims.init_std))),
      i_proj(add_module("i_proj", std::make_unique<Linear>(dims.d_model, dims.d_model, false, gen, dims.init_std))),
      config_(config),
      H_(config.num_heads),
      K_(K),
      V_(dims.d_model / config.num_heads),
      lower_bound_(dims.layer_idx > 0 ? static_cast<double>(dims.layer_idx) / static_cast<double>(dims.n_layer) : 0.0) {
  const int64_t D = dims.d_model;
  if (config.use_short_conv) {
    // fla: ShortConvolution(activation = None, bias = conv_bias = False).
    q_conv1d = &add_module("q_conv1d", std::make_unique<ShortConv>(H_ * K, config.conv_size, false, false, gen));
    f_conv1d = &add_module("f_conv1d", std::make_unique<ShortConv>(H_ * K, config.conv_size, false, false, gen));
    i_conv1d = &add_module("i_conv1d", std::make_unique<ShortConv>(D, config.conv_size, false, false, gen));
  }
  g_norm = &add_module("g_norm", std::make_unique<RMSNorm>(D, dims.norm_eps));
  o_proj = &add_module("o_proj", std::make_unique<Linear>(D, D, false, gen, dims.init_std));
}

MixerOutput HGRN2Attention::forward(const MixerInput& in) const {
  call_shape(in);  // validates x and cu_seqlens
  const int64_t B = in.x.size(0), T = in.x.size(1);
  MixerOutput result;
  Tensor q = q_proj.forward(in.x);  // [B, T, H·K]
  Tensor f = f_proj.forward(in.x);  // [B, T, H·K]
  Tensor i = i_proj.forward(in.x);  // [B, T, D]
  if (q_conv1d) {
    q = q_conv1d->forward(q, in, "conv_q", result.state);
    f = f_conv1d->forward(f, in, "conv_f", result.state);
    i = i_conv1d->forward(i, in, "conv_i", result.state);
  }
  q = silu(q);
  // log f = log(lb + (1 − lb)·σ(f)), fla's logaddexp(log lb, log(1 − lb) + logsigmoid(f)).
  Tensor g = logsigmoid(f);  // [B, T, H·K]
  if (lower_bound_ > 0) g = log(add(mul(exp(g), 1.0 - lower_bound_), lower_bound_));
  const Tensor k = 1.0 - exp(g);  // input gate 1 − f, tied to the forget gate

  TensorDict inputs{{"q", reshape(q, {B, T, H_, K_})},
                    {"k", reshape(k, {B, T, H_, K_})},
                    {"v", reshape(i, {B, T, H_, V_})},
                    {"g", reshape(g, {B, T, H_, K_})}};
  // scale K^−1/2, fla's chunk_gla default.
  const Tensor o_heads = run_state_kernel("gla", std::move(inputs), in, config_.chunk_size, result.state);
  const Tensor o = g_norm->forward(reshape(o_heads, {B, T, H_ * V_}));  // [B, T, D], normalised over all heads
  result.y = o_proj->forward(o);                                        // [B, T, D]
  return result;
}

double HGRN2Attention::flops_per_token(int64_t /*context*/) const {
  const double D = static_cast<double>(i_proj.in_features());
  const double HK = static_cast<double>(H_ * K_);
  double weights = D * HK * 2 + D * D * 2;  // q, f, i, o projections
  if (q_conv1d) weights += static_cast<double>(config_.conv_size) * (2 * HK + D);
  return 2.0 * weights + 4.0 * HK * static_cast<double>(V_);  // + state update and read per head
}

MixerSpec hgrn2_mixer() {
  MixerSpec spec;
  spec.name = "hgrn2";
  spec.description =
      "HGRN2 (Qin et al. 2024; fla HGRN2Attention): q/f/i proj, q = swish, forget gate with a fixed per-layer "
      "lower bound layer_idx/n_layer, k = 1 - f, gla kernel, RMSNorm, o_proj";
  spec.kernel = "gla";
  spec.defaults = Hgrn2Config{};
  spec.preset_options = [](int64_t d, PresetScale scale) -> MixerConfig {
    Hgrn2Config c;
    c.num_heads = preset_num_heads(d, scale);
    c.head_dim = preset_head_dim(scale);
    return c;
  };
  spec.make = [](const MixerConfig& config, const ModelDims& dims, Generator& gen) -> std::unique_ptr<Mixer> {
    const auto& c = config.as<Hgrn2Config>();
    const int64_t D = dims.d_model, H = c.num_heads;
    LNX_CHECK(H > 0, ValueError, "[hgrn2] num_heads = {} must be positive", H);
    LNX_CHECK(D > 0 && D % H == 0, ValueError, "[hgrn2] num_heads = {} does not divide d_model = {}", H, D);
    LNX_CHECK(c.head_dim >= 0, ValueError, "[hgrn2] head_dim = {} must be >= 0", c.head_dim);
    const double width = c.head_dim > 0 ? static_cast<double>(c.head_dim * H) : c.expand_k * static_cast<double>(D);
    const int64_t r = std::llround(width);
    LNX_CHECK(width > 0 && std::abs(width - static_cast<double>(r)) < 1e-9 && r % H == 0, ValueError,
              "[hgrn2] num_heads = {} does not divide the forget width {} (d_model = {}, expand_k = {})", H, width, D,
              c.expand_k);
    LNX_CHECK(!c.use_short_conv || c.conv_size >= 2, ValueError, "[hgrn2] conv_size = {} must be at least 2",
              c.conv_size);
    check_chunk_size("hgrn2", c.chunk_size);
    LNX_CHECK(dims.n_layer > 0 && dims.layer_idx >= 0 && dims.layer_idx < dims.n_layer, ValueError,
              "[hgrn2] layer_idx = {} must be in [0, n_layer = {})", dims.layer_idx, dims.n_layer);
    return std::make_unique<HGRN2Attention>(c, dims, r / H, gen);
  };
  return spec;
}

}  // namespace lnx::modules
