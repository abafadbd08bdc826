// Gated linear attention (Yang et al. 2023), the layer of flash-linear-attention's
// GatedLinearAttention: q/k/v projections → optional short convs (SiLU) → per-key-dim log
// gate gk = logsigmoid(gk_proj(x)) / gate_logit_normalizer with a low-rank gk_proj → kernel
// gla → swish-gated RMSNorm (g_proj) → o_proj.
// Dimension letters: B batch, T time, D model width, H heads, K key dim per head, V value dim
// per head, N sequences, W conv width. State: "recurrent" [N, H, K, V] and, with short convs,
// "conv_q" [N, W−1, H·K], "conv_k" [N, W−1, H·K], "conv_v" [N, W−1, H·V].
#pragma once

#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/norm.h"
#include "modules/short_conv.h"

namespace lnx::modules {

// The gla mixer's options (defaults: fla's GatedLinearAttention, key_dim = D/2, value_dim = D).
struct GlaConfig {
  int64_t num_heads = 4;
  int64_t head_dim = 0;
  double expand_k = 0.5;
  double expand_v = 1.0;
  bool use_short_conv = false;
  int64_t conv_size = 4;
  bool use_output_gate = true;
  int64_t gate_low_rank_dim = 16;
  double gate_logit_normalizer = 16.0;
  int64_t chunk_size = 64;

  template <class V> void visit(V&& v) {
    v("num_heads", num_heads, "heads", mixer_bounds::heads);
    v("head_dim", head_dim, "key dim per head (0 = expand_k * d_model / num_heads)", mixer_bounds::dim);
    v("expand_k", expand_k, "key width over d_model (with head_dim 0)", mixer_bounds::ratio);
    v("expand_v", expand_v, "value width over d_model (over head_dim * num_heads when head_dim is set)",
      mixer_bounds::ratio);
    v("use_short_conv", use_short_conv, "short causal conv (+ SiLU) on q, k, v");
    v("conv_size", conv_size, "short conv kernel width", mixer_bounds::conv);
    v("use_output_gate", use_output_gate, "swish-gated RMSNorm on the output (g_proj)");
    v("gate_low_rank_dim", gate_low_rank_dim, "rank of the gate projection gk_proj", mixer_bounds::dim);
    v("gate_logit_normalizer", gate_logit_normalizer, "divides logsigmoid of the gate", core::Bounds{0, 1e6});
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)", mixer_bounds::chunk);
  }
};

class GatedLinearAttention : public Mixer {
 public:
  // Built through gla_mixer().make, which validates config and resolves K, V.
  GatedLinearAttention(const GlaConfig& config, const ModelDims& dims, int64_t K, int64_t V, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  Linear& q_proj;                             // [H·K, D]
  Linear& k_proj;                             // [H·K, D]
  Linear& v_proj;                             // [H·V, D]
  Linear* g_proj = nullptr;                   // [H·V, D] with use_output_gate
  ShortConv* q_conv1d = nullptr;              // [H·K, W] with use_short_conv
  ShortConv* k_conv1d = nullptr;              // [H·K, W]
  ShortConv* v_conv1d = nullptr;              // [H·V, W]
  LowRankLinear* gk_proj = nullptr;           // D → r → H·K (bias on the second)
  Linear* o_proj = nullptr;                   // [D, H·V]
  GatedRMSNorm* g_norm_swish_gate = nullptr;  // [V] with use_output_gate
  RMSNorm* g_norm = nullptr;                  // [V] without

 private:
  GlaConfig config_;
  int64_t H_, K_, V_;
};

MixerSpec gla_mixer();

}  // namespace lnx::modules
