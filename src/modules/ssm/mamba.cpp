// The Mamba-1 layer (see mamba.h). Dimension letters: B batch, T time, D model width,
// E inner width, R dt rank, S state size, W conv width, N sequences.
#include "modules/ssm/mamba.h"

#include <cmath>

#include "core/gating.h"
#include "kernels/mechanism.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

namespace {

Mamba::Sizes mamba_sizes(const MambaConfig& c, const ModelDims& dims) {
  Mamba::Sizes s;
  s.D = dims.d_model;
  LNX_CHECK(s.D >= 1, ValueError, "[mamba] d_model = {}: expected >= 1", s.D);
  const double inner = c.expand * static_cast<double>(s.D);
  LNX_CHECK(c.expand > 0 && inner == std::floor(inner), ValueError,
            "[mamba] expand = {} times d_model = {} is not a positive whole inner width", c.expand, s.D);
  s.E = static_cast<int64_t>(inner);
  s.R = c.dt_rank == 0 ? (s.D + 15) / 16 : c.dt_rank;  // mamba_ssm's "auto": ⌈D / 16⌉
  LNX_CHECK(s.R >= 1, ValueError, "[mamba] dt_rank = {}: expected >= 1 (0 = ceil(d_model / 16))", c.dt_rank);
  LNX_CHECK(c.state_size >= 1, ValueError, "[mamba] state_size = {}: expected >= 1", c.state_size);
  s.S = c.state_size;
  LNX_CHECK(c.conv_size >= 2, ValueError, "[mamba] conv_size = {}: expected >= 2", c.conv_size);
  s.W = c.conv_size;
  check_chunk_size("mamba", c.chunk_size);
  return s;
}

// S4D-real initialisation of mamba_ssm: A_log[e, s] = log(s + 1) for every channel e.
Tensor a_log_init(int64_t E, int64_t S) {
  std::vector<double> a(static_cast<size_t>(E * S));
  for (size_t i = 0; i < a.size(); ++i) a[i] = std::log(static_cast<double>(static_cast<int64_t>(i) % S + 1));
  return to_dtype(from_vector(a, {E, S}), DType::f32);
}

}  // namespace

// Projections N(0, init_std²) as flash-linear-attention's Mamba _init_weights (mamba_ssm keeps
// PyTorch's default Linear init); conv1d U(±1/√W) (PyTorch's Conv1d default, as mamba_ssm);
// dt_proj as mamba_ssm's dt_init = "random": weight U(±R^−1/2), bias softplus⁻¹ of a
// log-uniform dt in [1e-3, 0.1] (floor 1e-4); A_log S4D-real; D ones.
Mamba::Mamba(const MambaConfig& c, const ModelDims& dims, Generator& gen)
    : sizes_(mamba_sizes(c, dims)),
      in_proj(add_module("in_proj", std::make_unique<Linear>(sizes_.D, 2 * sizes_.E, false, gen, dims.init_std))),
      conv1d(add_module("conv1d", std::make_unique<ShortConv>(sizes_.E, sizes_.W, true, true, gen))),
      x_proj(
          add_module("x_proj", std::make_unique<Linear>(sizes_.E, sizes_.R + 2 * sizes_.S, false, gen, dims.init_std))),
      dt_proj(add_module("dt_proj", std::make_unique<Linear>(sizes_.R, sizes_.E, true, gen, dims.init_std))),
      A_log(add_parameter("A_log", a_log_init(sizes_.E, sizes_.S))),
      D(add_parameter("D", ones({sizes_.E}))),
      out_proj(add_module("out_proj", std::make_unique<Linear>(sizes_.E, sizes_.D, false, gen, dims.init_std))),
      chunk_size_(c.chunk_size) {
  // Replacing the slots keeps the leaves' names; add_parameter made them leaves, so do the same.
  Tensor w = init_uniform({sizes_.E, sizes_.R}, 1.0 / std::sqrt(static_cast<double>(sizes_.R)), gen);
  w.set_requires_grad();
  dt_proj.weight = w;
  Tensor b = core::dt_bias_init(sizes_.E, gen);
  b.set_requires_grad();
  *dt_proj.bias = b;
}

MixerOutput Mamba::forward(const MixerInput& in) const {
  call_shape(in);  // checks x is [B, T, D] (and cu_seqlens)
  const auto [Dm, E, R, S, W] = sizes_;
  LNX_CHECK(in.x.size(2) == Dm, ShapeError, "[mamba] x is {}: expected [B, T, {}]", shape_str(in.x.shape()), Dm);
  const int64_t B = in.x.size(0), T = in.x.size(1);
  const TensorList uz = split(in_proj.forward(in.x), {E, E}, 2);  // u, z [B, T, E]

  const Tensor conv_cache = in.state ? in.state->get("conv") : Tensor();  // [N, W−1, E]
  const core::ConvOutput conv = conv1d.forward(uz[0], conv_cache, in.cu_seqlens);
  const Tensor u = conv.y;  // [B, T, E], after SiLU

  const TensorList dbc = split(x_proj.forward(u), {R, S, S}, 2);  // [B,T,R], [B,T,S], [B,T,S]
  // dt_proj without its bias: mamba_ssm hands the bias to the scan as delta_bias, which adds
  // it before the softplus, exactly as the kernel's dt_bias does.
  const Tensor dt = matmul(dbc[0], transpose(dt_proj.weight, 0, 1));  // [B, T, E]

  // One B/C group (the kernel's H = 1): the channels E play V, the state size S plays K.
  TensorDict inputs{{"x", reshape(u, {B, T, 1, E})},
                    {"dt", reshape(dt, {B, T, 1, E})},
                    {"A_log", reshape(A_log, {1, E, S})},
                    {"dt_bias", reshape(*dt_proj.bias, {1, E})},
                    {"B", reshape(dbc[1], {B, T, 1, S})},
                    {"C", reshape(dbc[2], {B, T, 1, S})},
                    {"D", reshape(D, {1, E})}};
  // State "recurrent" [N, 1, S, E]; scale: the kernel's default 1 (C read unscaled).
  MixerOutput result;
  const Tensor o = run_state_kernel("mamba", std::move(inputs), in, chunk_size_, result.state);
  const Tensor y = mul(reshape(o, {B, T, E}), silu(uz[1]));  // [B, T, E]
  result.y = out_proj.forward(y);                            // [B, T, D]
  result.state.set("conv", conv.cache);
  return result;
}

double Mamba::flops_per_token(int64_t) const {
  const auto [Dm, E, R, S, W] = sizes_;
  const double weights = static_cast<double>(Dm) * 2 * E + static_cast<double>(E) * (R + 2 * S) +
                         static_cast<double>(R) * E + static_cast<double>(E) * Dm + static_cast<double>(E) * W;
  return 2 * weights + 6.0 * static_cast<double>(S) * E;
}

MixerSpec mamba_mixer() {
  MixerSpec s;
  s.name = "mamba";
  s.description =
      "Mamba-1 layer (Gu & Dao 2023, mamba_ssm): in_proj to (x, z), causal conv + SiLU, x_proj to "
      "(dt, B, C), dt_proj, selective scan with S4D-real A, y * silu(z), out_proj";
  s.kernel = "mamba";
  s.defaults = MambaConfig{};
  s.block_mlp = false;  // Mamba blocks are mixer-only
  // Presets: state 16 at every scale.
  s.preset_options = [](int64_t, PresetScale) -> MixerConfig {
    MambaConfig c;
    c.state_size = 16;
    return c;
  };
  s.make = [](const MixerConfig& c, const ModelDims& dims, Generator& gen) -> std::unique_ptr<Mixer> {
    return std::make_unique<Mamba>(c.as<MambaConfig>(), dims, gen);
  };
  return s;
}

}  // namespace lnx::modules
