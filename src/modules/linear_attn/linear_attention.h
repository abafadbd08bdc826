// Linear attention (Katharopoulos et al. 2020), the layer of flash-linear-attention's
// LinearAttention: q/k/v projections → feature map φ on q and k → kernel linear_attn →
// per-head RMSNorm → o_proj. Dimension letters: B batch, T time, D model width, H heads,
// K key dim per head, V value dim per head, N sequences.
//
// State: "recurrent" [N, H, K, V] (Σ φ(k) vᵀ) and, with normalize, "key_sum" [N, H, K] (Σ φ(k)),
// so that normalised outputs survive split-and-resume.
#pragma once

#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/norm.h"

namespace lnx::modules {

class LinearAttention : public Mixer {
 public:
  // Built through linear_attention_mixer().make, which validates config and resolves K, V.
  LinearAttention(const MixerConfig& config, const ModelDims& dims, int64_t K, int64_t V, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  Linear& q_proj;  // [H·K, D]
  Linear& k_proj;  // [H·K, D]
  Linear& v_proj;  // [H·V, D]
  RMSNorm& norm;   // [V], shared by the heads as in fla
  Linear& o_proj;  // [D, H·V]

 private:
  MixerConfig config_;
  int64_t H_, K_, V_;
};

// Per-head key dim K = head_dim, or expand_k·D / H; value dim V = expand_v·head_dim when
// head_dim is given, else expand_v·D / H (fla's value_dim = expand_v·D split over the heads).
// ValueError (prefixed with [who]) when the widths are not whole multiples of num_heads.
void linear_attn_head_dims(const char* who, const MixerConfig& config, int64_t d_model, int64_t& K, int64_t& V);

// Feature maps of linear attention by name (identity, relu, elu_plus_one, silu); ValueError
// listing them for another name.
Tensor linear_attention_feature_map(const std::string& name, const Tensor& x);

MixerSpec linear_attention_mixer();

}  // namespace lnx::modules
