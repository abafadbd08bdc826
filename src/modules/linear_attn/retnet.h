// RetNet's multi-scale retention (Sun et al. 2023), the layer of flash-linear-attention's
// MultiScaleRetention: q/k/v projections → RoPE on q, k → kernel retention (fixed per-head
// decays 1 − 2^(−5−h)) → gated RMSNorm with a swish output gate (g_proj) → o_proj.
// Dimension letters: B batch, T time, D model width, H heads, K key dim per head, V value
// dim per head, N sequences. State: "recurrent" [N, H, K, V]; positions continue from in.seen.
#pragma once

#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/norm.h"

namespace lnx::modules {

class MultiScaleRetention : public Mixer {
 public:
  // Built through retnet_mixer().make, which validates config and resolves K, V.
  MultiScaleRetention(const MixerConfig& config, const ModelDims& dims, int64_t K, int64_t V, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  Linear& q_proj;                       // [H·K, D]
  Linear& k_proj;                       // [H·K, D]
  Linear& v_proj;                       // [H·V, D]
  Linear* g_proj = nullptr;             // [H·V, D] with use_output_gate
  GatedRMSNorm* g_norm_swish_gate = nullptr;  // [V] with use_output_gate
  RMSNorm* g_norm = nullptr;            // [V] without
  Linear& o_proj;                       // [D, H·V]

 private:
  MixerConfig config_;
  int64_t H_, K_, V_;
};

MixerSpec retnet_mixer();

}  // namespace lnx::modules
