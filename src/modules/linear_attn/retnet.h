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

// The retnet mixer's options (defaults: fla's MultiScaleRetention, key_dim = D, value_dim = 2·D).
struct RetNetConfig {
  int64_t num_heads = 4;
  int64_t head_dim = 0;
  double expand_k = 1.0;
  double expand_v = 2.0;
  bool use_output_gate = true;
  double rope_theta = 10000.0;
  int64_t chunk_size = 64;

  template <class V> void visit(V&& v) {
    v("num_heads", num_heads, "heads", mixer_bounds::heads);
    v("head_dim", head_dim, "key dim per head (0 = expand_k * d_model / num_heads; even, for RoPE)", mixer_bounds::dim);
    v("expand_k", expand_k, "key width over d_model (with head_dim 0)", mixer_bounds::ratio);
    v("expand_v", expand_v, "value width over the key width", mixer_bounds::ratio);
    v("use_output_gate", use_output_gate, "swish-gated RMSNorm on the output (g_proj)");
    v("rope_theta", rope_theta, "RoPE base", mixer_bounds::rope_theta);
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)", mixer_bounds::chunk);
  }
};

class MultiScaleRetention : public Mixer {
 public:
  // Built through retnet_mixer().make, which validates config and resolves K, V.
  MultiScaleRetention(const RetNetConfig& config, const ModelDims& dims, int64_t K, int64_t V, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  Linear& q_proj;                             // [H·K, D]
  Linear& k_proj;                             // [H·K, D]
  Linear& v_proj;                             // [H·V, D]
  Linear* g_proj = nullptr;                   // [H·V, D] with use_output_gate
  GatedRMSNorm* g_norm_swish_gate = nullptr;  // [V] with use_output_gate
  RMSNorm* g_norm = nullptr;                  // [V] without
  Linear& o_proj;                             // [D, H·V]

 private:
  RetNetConfig config_;
  int64_t H_, K_, V_;
};

MixerSpec retnet_mixer();

}  // namespace lnx::modules
