// The Mamba-1 layer (Gu & Dao, 2023; mamba_ssm's Mamba module). Dimension letters: B batch,
// T time, D model width, E inner width (d_inner = expand·D), R dt rank, S state size (d_state),
// W conv width, N sequences.
//
//   x [B,T,D] → in_proj → (u, z) [B,T,E] each → causal conv1d + SiLU over u
//     → x_proj → (dt_low [B,T,R], B [B,T,S], C [B,T,S]) → dt = dt_proj.weight · dt_low [B,T,E]
//     → selective scan (Δ = softplus(dt + dt_proj.bias), A = −exp(A_log), one B/C group)
//     → y ⊙ silu(z) → out_proj → [B,T,D]
//   state: "recurrent" [N, 1, S, E] (the scan state, mamba_ssm's ssm_state transposed),
//          "conv" [N, W−1, E] (the last conv inputs)
#pragma once

#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/short_conv.h"

namespace lnx::modules {

// The mamba mixer's options (defaults: mamba_ssm's Mamba).
struct MambaConfig {
  int64_t state_size = 16;
  double expand = 2.0;
  int64_t dt_rank = 0;
  int64_t conv_size = 4;
  int64_t chunk_size = 64;

  template <class V> void visit(V&& v) {
    v("state_size", state_size, "SSM state size per channel (d_state)", mixer_bounds::dim);
    v("expand", expand, "inner width over d_model", mixer_bounds::ratio);
    v("dt_rank", dt_rank, "rank of the dt projection (0 = ceil(d_model / 16))", mixer_bounds::dim);
    v("conv_size", conv_size, "causal conv kernel width (>= 2)", mixer_bounds::conv);
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)", mixer_bounds::chunk);
  }
};

class Mamba : public Mixer {
 public:
  struct Sizes {
    int64_t D = 0, E = 0, R = 0, S = 0, W = 0;
  };

 private:
  Sizes sizes_;  // first: the parameters below are built from it

 public:
  Mamba(const MambaConfig& config, const ModelDims& dims, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  // 2 per weight (projections and conv taps) plus the scan: per state element and token the
  // decay argument Δ·A (1), exp (1), the update (2) and the read (2).
  double flops_per_token(int64_t context) const override;
  const Sizes& sizes() const { return sizes_; }

  Linear& in_proj;    // [2E, D], no bias
  ShortConv& conv1d;  // weight [E, W], bias [E] (mamba_ssm's Conv1d weight is [E, 1, W])
  Linear& x_proj;     // [R + 2S, E], no bias
  Linear& dt_proj;    // weight [E, R], bias [E] (the scan's dt_bias)
  Tensor& A_log;      // [E, S]
  Tensor& D;          // [E]
  Linear& out_proj;   // [D, E], no bias

 private:
  int64_t chunk_size_;
};

MixerSpec mamba_mixer();

}  // namespace lnx::modules
