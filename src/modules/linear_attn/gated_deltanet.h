// Gated DeltaNet (Yang, Kautz & Hatamizadeh 2024, "Gated Delta Networks: Improving Mamba2 with
// Delta Rule"; flash-linear-attention's GatedDeltaNet layer), the default model's mixer.
//
// Dimension letters: B batch, T time, D model width, H heads, K key dim per head, V value dim
// per head (expand_v · K), N sequences.
//
//   x [B,T,D] → q, k [B,T,H,K], v [B,T,H,V] (Linear → short conv + SiLU)
//             → β = σ(b_proj x) [B,T,H],  g = −exp(A_log) · softplus(a_proj x + dt_bias) [B,T,H]
//             → gated_delta_rule (L2-norm on q, k in the kernel) → o [B,T,H,V]
//             → rmsnorm(o) ⊙ weight ⊙ silu(g_proj x) per head (RMSNorm alone without the gate)
//             → o_proj → y [B,T,D]
#pragma once

#include "modules/linear_attn/deltanet.h"

namespace lnx::modules {

// Gated DeltaNet's options: the delta family's, with fla's GatedDeltaNet defaults (expand_v 2,
// output gate).
struct GatedDeltaNetConfig : DeltaFamilyConfig {
  GatedDeltaNetConfig() {
    expand_v = 2.0;
    use_output_gate = true;
  }
};

class GatedDeltaNet : public DeltaFamilyMixer {
 public:
  GatedDeltaNet(const GatedDeltaNetConfig& config, const ModelDims& dims, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  Linear& a_proj;   // [H, D]
  Linear& b_proj;   // [H, D]
  Tensor& A_log;    // [H]: log U(0, 16)
  Tensor& dt_bias;  // [H]: softplus⁻¹ of dt ~ logU(0.001, 0.1) (Mamba)
};

MixerSpec gated_deltanet_mixer();

}  // namespace lnx::modules
