// The Mamba-2 layer (see mamba2.h). Dimension letters: B batch, T time, D model width,
// E inner width, H heads, P head dim, G groups, S state size, W conv width, N sequences.
#include "modules/ssm/mamba2.h"

#include <algorithm>
#include <cmath>

#include "core/gating.h"
#include "kernels/mechanism.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

namespace {

Mamba2::Sizes mamba2_sizes(const Mamba2Config& c, const ModelDims& dims) {
  Mamba2::Sizes s;
  s.D = dims.d_model;
  LNX_CHECK(s.D >= 1, ValueError, "[mamba2] d_model = {}: expected >= 1", s.D);
  const double inner = c.expand * static_cast<double>(s.D);
  LNX_CHECK(c.expand > 0 && inner == std::floor(inner), ValueError,
            "[mamba2] expand = {} times d_model = {} is not a positive whole inner width", c.expand, s.D);
  s.E = static_cast<int64_t>(inner);
  // head_dim 0: mamba_ssm's default 64, or the whole inner width when that is narrower.
  s.P = c.head_dim == 0 ? std::min<int64_t>(64, s.E) : c.head_dim;
  LNX_CHECK(s.P >= 1 && s.E % s.P == 0, ValueError, "[mamba2] head_dim = {} does not divide d_inner = {}", s.P, s.E);
  s.H = s.E / s.P;
  LNX_CHECK(c.n_groups >= 1 && s.H % c.n_groups == 0, ValueError,
            "[mamba2] n_groups = {} does not divide the {} heads (d_inner {} / head_dim {})", c.n_groups, s.H, s.E,
            s.P);
  s.G = c.n_groups;
  LNX_CHECK(c.state_size >= 1, ValueError, "[mamba2] state_size = {}: expected >= 1", c.state_size);
  s.S = c.state_size;
  LNX_CHECK(c.conv_size >= 2, ValueError, "[mamba2] conv_size = {}: expected >= 2", c.conv_size);
  s.W = c.conv_size;
  check_chunk_size("mamba2", c.chunk_size);
  LNX_CHECK(c.norm_eps > 0, ValueError, "[mamba2] norm_eps = {}: expected > 0", c.norm_eps);
  return s;
}

// [B, T, G, S] → [B, T, H, S]: head h reads group h / (H/G), as mamba_ssm's
// repeat "b l g n -> b l (g h) n".
Tensor to_heads(const Tensor& x, int64_t H) {
  const int64_t B = x.size(0), T = x.size(1), G = x.size(2), S = x.size(3);
  if (G == H) return x;
  return reshape(expand(unsqueeze(x, 3), {B, T, G, H / G, S}), {B, T, H, S});
}

}  // namespace

// Projections N(0, init_std²) as flash-linear-attention's Mamba2 _init_weights (mamba_ssm keeps
// PyTorch's default Linear init); conv1d U(±1/√W) (PyTorch's Conv1d default); dt_bias
// softplus⁻¹ of a log-uniform dt in [1e-3, 0.1] (floor 1e-4); A_log = log U(1, 16); D ones;
// norm weight ones — all as mamba_ssm's Mamba2.
Mamba2::Mamba2(const Mamba2Config& c, const ModelDims& dims, Generator& gen)
    : sizes_(mamba2_sizes(c, dims)),
      in_proj(add_module("in_proj", std::make_unique<Linear>(sizes_.D, sizes_.E + sizes_.conv_dim() + sizes_.H, false,
                                                             gen, dims.init_std))),
      conv1d(add_module("conv1d", std::make_unique<ShortConv>(sizes_.conv_dim(), sizes_.W, true, true, gen))),
      dt_bias(add_parameter("dt_bias", core::dt_bias_init(sizes_.H, gen))),
      A_log(add_parameter("A_log", core::A_log_init(sizes_.H, gen, 1.0, 16.0))),
      D(add_parameter("D", ones({sizes_.H}))),
      norm(add_module("norm", std::make_unique<GatedRMSNorm>(sizes_.E, c.norm_eps, false))),
      out_proj(add_module("out_proj", std::make_unique<Linear>(sizes_.E, sizes_.D, false, gen, dims.init_std))),
      chunk_size_(c.chunk_size) {}

MixerOutput Mamba2::forward(const MixerInput& in) const {
  call_shape(in);  // checks x is [B, T, D] (and cu_seqlens)
  const auto [Dm, E, H, P, G, S, W] = sizes_;
  LNX_CHECK(in.x.size(2) == Dm, ShapeError, "[mamba2] x is {}: expected [B, T, {}]", shape_str(in.x.shape()), Dm);
  const int64_t B = in.x.size(0), T = in.x.size(1);
  // z [B,T,E], xBC [B,T,E+2GS], dt [B,T,H] (mamba_ssm's order, without its optional MLP part)
  const TensorList zxd = split(in_proj.forward(in.x), {E, sizes_.conv_dim(), H}, 2);

  const Tensor conv_cache = in.state ? in.state->get("conv") : Tensor();  // [N, W−1, E+2GS]
  const core::ConvOutput conv = conv1d.forward(zxd[1], conv_cache, in.cu_seqlens);
  const TensorList xbc = split(conv.y, {E, G * S, G * S}, 2);  // after SiLU

  TensorDict inputs{{"x", reshape(xbc[0], {B, T, H, P})},
                    {"dt", zxd[2]},
                    {"A_log", A_log},
                    {"dt_bias", dt_bias},
                    {"B", to_heads(reshape(xbc[1], {B, T, G, S}), H)},
                    {"C", to_heads(reshape(xbc[2], {B, T, G, S}), H)},
                    {"D", D}};
  // State "recurrent" [N, H, S, P]; scale: the kernel's default 1 (C read unscaled).
  MixerOutput result;
  Tensor y = reshape(run_state_kernel("mamba2", std::move(inputs), in, chunk_size_, result.state), {B, T, E});
  if (G == 1) {
    y = norm.forward(y, zxd[0]);
  } else {
    // RMSNormGated with group_size E/G: each group of channels is normalised on its own.
    const Tensor gated = reshape(mul(y, silu(zxd[0])), {B, T, G, E / G});
    y = mul(reshape(rms_norm(gated, Tensor(), norm.eps), {B, T, E}), norm.weight);
  }
  result.y = out_proj.forward(y);  // [B, T, D]
  result.state.set("conv", conv.cache);
  return result;
}

double Mamba2::flops_per_token(int64_t) const {
  const Sizes& s = sizes_;
  const double weights = static_cast<double>(s.D) * (s.E + s.conv_dim() + s.H) + static_cast<double>(s.E) * s.D +
                         static_cast<double>(s.conv_dim()) * s.W;
  return 2 * weights + 4.0 * static_cast<double>(s.H) * s.S * s.P;
}

MixerSpec mamba2_mixer() {
  MixerSpec s;
  s.name = "mamba2";
  s.description =
      "Mamba-2 layer (Dao & Gu 2024, mamba_ssm): in_proj to (z, xBC, dt), causal conv + SiLU, SSD scan "
      "with scalar A per head and grouped B/C, gated RMSNorm, out_proj";
  s.kernel = "mamba2";
  s.defaults = Mamba2Config{};
  s.block_mlp = false;  // Mamba blocks are mixer-only
  // Presets: heads of 16 channels and state 16 (tiny), 64 and 64 (small).
  s.preset_options = [](int64_t, PresetScale scale) -> MixerConfig {
    Mamba2Config c;
    c.head_dim = scale == PresetScale::small ? 64 : 16;
    c.state_size = scale == PresetScale::small ? 64 : 16;
    return c;
  };
  s.make = [](const MixerConfig& c, const ModelDims& dims, Generator& gen) -> std::unique_ptr<Mixer> {
    return std::make_unique<Mamba2>(c.as<Mamba2Config>(), dims, gen);
  };
  return s;
}

}  // namespace lnx::modules
