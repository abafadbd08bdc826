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

class GatedLinearAttention : public Mixer {
 public:
  // Built through gla_mixer().make, which validates config and resolves K, V.
  GatedLinearAttention(const MixerConfig& config, const ModelDims& dims, int64_t K, int64_t V, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  Linear& q_proj;                 // [H·K, D]
  Linear& k_proj;                 // [H·K, D]
  Linear& v_proj;                 // [H·V, D]
  Linear* g_proj = nullptr;       // [H·V, D] with use_output_gate
  ShortConv* q_conv1d = nullptr;  // [H·K, W] with use_short_conv
  ShortConv* k_conv1d = nullptr;  // [H·K, W]
  ShortConv* v_conv1d = nullptr;  // [H·V, W]
  LowRankLinear* gk_proj = nullptr;           // D → r → H·K (bias on the second)
  Linear* o_proj = nullptr;                   // [D, H·V]
  GatedRMSNorm* g_norm_swish_gate = nullptr;  // [V] with use_output_gate
  RMSNorm* g_norm = nullptr;                  // [V] without

 private:
  MixerConfig config_;
  int64_t H_, K_, V_;
};

MixerSpec gla_mixer();

}  // namespace lnx::modules
