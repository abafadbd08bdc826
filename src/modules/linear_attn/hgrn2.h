// HGRN2 (Qin et al. 2024, "Gated Linear RNNs with State Expansion"), the layer of
// flash-linear-attention's HGRN2Attention: q_proj, f_proj, i_proj (optional short convs
// without activation) → q = swish(q), forget gate f = lb + (1 − lb)·σ(f_proj x) with a lower
// bound lb, k = 1 − f, g = log f → kernel gla (v = i) → RMSNorm over all heads (g_norm) → o_proj.
//
// Lower bound: fla's HGRN2 model learns per-layer bounds (softmax over layers of a zero-
// initialised parameter, cumsum, minus the first), i.e. lb = layer_idx / n_layer at
// initialisation. Here lb is that value, fixed (not learned): 0 for the first layer.
//
// Dimension letters: B batch, T time, D model width, H heads, K forget/key dim per head
// (fla's expand_ratio), V = D / H input dim per head, N sequences, W conv width. State:
// "recurrent" [N, H, K, V]; with short convs "conv_q", "conv_f" [N, W−1, H·K], "conv_i" [N, W−1, D].
#pragma once

#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/norm.h"
#include "modules/short_conv.h"

namespace lnx::modules {

// The hgrn2 mixer's options (K = head_dim, or expand_k·D / H: fla's expand_ratio = 128 with
// H = D/128).
struct Hgrn2Config {
  int64_t num_heads = 4;
  int64_t head_dim = 0;
  double expand_k = 1.0;
  bool use_short_conv = false;
  int64_t conv_size = 4;
  int64_t chunk_size = 64;

  template <class V> void visit(V&& v) {
    v("num_heads", num_heads, "heads (dividing d_model)", mixer_bounds::heads);
    v("head_dim", head_dim, "forget/key dim per head (0 = expand_k * d_model / num_heads)", mixer_bounds::dim);
    v("expand_k", expand_k, "forget width over d_model (with head_dim 0)", mixer_bounds::ratio);
    v("use_short_conv", use_short_conv, "short causal conv (no activation) on q, f, i");
    v("conv_size", conv_size, "short conv kernel width", mixer_bounds::conv);
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)", mixer_bounds::chunk);
  }
};

class HGRN2Attention : public Mixer {
 public:
  // Built through hgrn2_mixer().make, which validates config and resolves K.
  HGRN2Attention(const Hgrn2Config& config, const ModelDims& dims, int64_t K, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;
  double lower_bound() const { return lower_bound_; }

  Linear& q_proj;                 // [H·K, D]
  Linear& f_proj;                 // [H·K, D]
  Linear& i_proj;                 // [D, D]
  ShortConv* q_conv1d = nullptr;  // [H·K, W] with use_short_conv
  ShortConv* f_conv1d = nullptr;  // [H·K, W]
  ShortConv* i_conv1d = nullptr;  // [D, W]
  RMSNorm* g_norm = nullptr;      // [D]
  Linear* o_proj = nullptr;       // [D, D]

 private:
  Hgrn2Config config_;
  int64_t H_, K_, V_;
  double lower_bound_;
};

MixerSpec hgrn2_mixer();

}  // namespace lnx::modules
