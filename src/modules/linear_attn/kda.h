// Kimi Delta Attention (Kimi Team 2025, "Kimi Linear"; flash-linear-attention's
// KimiDeltaAttention layer): Gated DeltaNet with a decay per key dimension.
//
// Dimension letters: B batch, T time, D model width, H heads, K key dim per head, V value dim
// per head (expand_v · K), R rank of the low-rank gate projections, N sequences.
//
//   x [B,T,D] → q, k [B,T,H,K], v [B,T,H,V] (Linear → short conv + SiLU)
//             → β = σ(b_proj x) [B,T,H]
//             → g = −exp(A_log_h) · softplus(f_proj x + dt_bias) [B,T,H,K]  (fla's fused_kda_gate;
//               f_proj = Linear(D, R) → Linear(R, H·K))
//             → kda (L2-norm on q, k in the kernel) → o [B,T,H,V]
//             → rmsnorm(o) ⊙ weight ⊙ sigmoid(g_proj x) per head (fla: FusedRMSNormGated with
//               activation='sigmoid'; g_proj = Linear(D, R) → Linear(R, H·V, bias))
//             → o_proj → y [B,T,D]
#pragma once

#include "modules/linear_attn/deltanet.h"

namespace lnx::modules {

// KDA's options: the delta family's (fla's KimiDeltaAttention defaults: expand_v 1, output gate)
// and the rank of its low-rank gate projections.
struct KdaConfig : DeltaFamilyConfig {
  int64_t gate_low_rank_dim = 0;

  KdaConfig() { use_output_gate = true; }
  template <class V> void visit(V&& v) {
    DeltaFamilyConfig::visit_shared(v);
    v("gate_low_rank_dim", gate_low_rank_dim, "rank of f_proj and g_proj (0 = the value dim per head, as fla)",
      mixer_bounds::dim);
  }
};

class KimiDeltaAttention : public DeltaFamilyMixer {
 public:
  KimiDeltaAttention(const KdaConfig& config, const ModelDims& dims, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  LowRankLinear& f_proj;  // "f_proj.0" [R, D], "f_proj.1" [H·K, R]
  Linear& b_proj;         // [H, D]
  Tensor& A_log;          // [H]: log U(1, 16)
  Tensor& dt_bias;        // [H·K]: softplus⁻¹ of dt ~ logU(0.001, 0.1) (Mamba)
  LowRankLinear* g_proj;  // "g_proj.0" [R, D], "g_proj.1" [H·V, R] + bias [H·V]; with use_output_gate
  RMSNorm& o_norm;        // [V]
  Linear& o_proj;         // [D, H·V]
  int64_t rank() const { return f_proj.down.out_features(); }
};

MixerSpec kda_mixer();

}  // namespace lnx::modules
