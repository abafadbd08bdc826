// The Mamba-2 layer (Dao & Gu, 2024; mamba_ssm's Mamba2 module). Dimension letters: B batch,
// T time, D model width, E inner width (d_inner = expand·D), H heads, P head dim (E = H·P),
// G groups of B/C, S state size (d_state), W conv width, N sequences.
//
//   x [B,T,D] → in_proj → z [B,T,E], xBC [B,T,E+2GS], dt [B,T,H]
//     → causal conv1d + SiLU over xBC → x [B,T,H,P], B, C [B,T,G,S] (expanded to the heads)
//     → SSD scan (Δ = softplus(dt + dt_bias), scalar A = −exp(A_log) per head, D skip)
//     → gated RMSNorm rmsnorm(y ⊙ silu(z)) per group of E/G channels → out_proj → [B,T,D]
//   state: "recurrent" [N, H, S, P], "conv" [N, W−1, E+2GS]
#pragma once

#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/norm.h"
#include "modules/short_conv.h"

namespace lnx::modules {

// The mamba2 mixer's options (defaults: mamba_ssm's Mamba2; d_state 128 as mamba_ssm and fla,
// presets choose smaller). Chunk size 32, not 64: on CPU the intra-chunk work (∝ chunk size)
// outweighs the state products at these head sizes; a training step of the -small/-tiny
// presets is 2–10% faster (BENCHMARKS.md).
struct Mamba2Config {
  int64_t head_dim = 0;
  int64_t state_size = 128;
  double expand = 2.0;
  int64_t n_groups = 1;
  int64_t conv_size = 4;
  int64_t chunk_size = 32;
  double norm_eps = 1e-5;

  template <class V> void visit(V&& v) {
    v("head_dim", head_dim, "channels per head (0 = 64, as mamba_ssm, or d_inner when narrower)", mixer_bounds::dim);
    v("state_size", state_size, "SSM state size per head (d_state)", mixer_bounds::dim);
    v("expand", expand, "inner width over d_model", mixer_bounds::ratio);
    v("n_groups", n_groups, "groups of the B/C projections (dividing the heads)", mixer_bounds::heads);
    v("conv_size", conv_size, "causal conv kernel width (>= 2)", mixer_bounds::conv);
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)", mixer_bounds::chunk);
    v("norm_eps", norm_eps, "eps of the gated RMSNorm (mamba_ssm's 1e-5; HF's layer_norm_epsilon)", core::Bounds{0, 1});
  }
};

class Mamba2 : public Mixer {
 public:
  struct Sizes {
    int64_t D = 0, E = 0, H = 0, P = 0, G = 0, S = 0, W = 0;
    int64_t conv_dim() const { return E + 2 * G * S; }
  };

 private:
  Sizes sizes_;  // first: the parameters below are built from it

 public:
  Mamba2(const Mamba2Config& config, const ModelDims& dims, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  // 2 per weight (projections and conv taps) plus the scan: 4·S·P per head (update and read).
  double flops_per_token(int64_t context) const override;
  const Sizes& sizes() const { return sizes_; }

  Linear& in_proj;     // [2E + 2GS + H, D], no bias
  ShortConv& conv1d;   // weight [E + 2GS, W], bias [E + 2GS]
  Tensor& dt_bias;     // [H]
  Tensor& A_log;       // [H]
  Tensor& D;           // [H]
  GatedRMSNorm& norm;  // weight [E]; normalises each group of E/G channels (eps norm_eps)
  Linear& out_proj;    // [D, E], no bias

 private:
  int64_t chunk_size_;
};

MixerSpec mamba2_mixer();

}  // namespace lnx::modules
