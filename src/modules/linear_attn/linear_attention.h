// Linear attention (Katharopoulos et al. 2020), the layer of flash-linear-attention's
// LinearAttention: q/k/v projections → feature map φ on q and k → kernel linear_attn →
// per-head RMSNorm → o_proj. Dimension letters: B batch, T time, D model width, H heads,
// K key dim per head, V value dim per head, N sequences.
//
// State: "recurrent" [N, H, K, V] (Σ φ(k) vᵀ) and, with normalize, "key_sum" [N, H, K] (Σ φ(k)),
// so that normalised outputs survive split-and-resume.
#pragma once

#include <string>

#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/norm.h"

namespace lnx::modules {

// The linear_attention mixer's options (defaults: fla's LinearAttention).
struct LinearAttentionConfig {
  int64_t num_heads = 4;
  int64_t head_dim = 0;
  double expand_k = 1.0;
  double expand_v = 1.0;
  std::string feature_map = "identity";
  bool normalize = false;
  int64_t chunk_size = 64;

  template <class V> void visit(V&& v) {
    v("num_heads", num_heads, "heads", mixer_bounds::heads);
    v("head_dim", head_dim, "key dim per head (0 = expand_k * d_model / num_heads)", mixer_bounds::dim);
    v("expand_k", expand_k, "key width over d_model (with head_dim 0)", mixer_bounds::ratio);
    v("expand_v", expand_v, "value width over d_model (over head_dim * num_heads when head_dim is set)",
      mixer_bounds::ratio);
    v("feature_map", feature_map, "feature map of q and k: identity, relu, elu_plus_one, silu");
    v("normalize", normalize, "divide the output by q . sum(k)");
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)", mixer_bounds::chunk);
  }
};

class LinearAttention : public Mixer {
 public:
  // Built through linear_attention_mixer().make, which validates config and resolves K, V.
  LinearAttention(const LinearAttentionConfig& config, const ModelDims& dims, int64_t K, int64_t V, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  Linear& q_proj;  // [H·K, D]
  Linear& k_proj;  // [H·K, D]
  Linear& v_proj;  // [H·V, D]
  RMSNorm& norm;   // [V], shared by the heads as in fla
  Linear& o_proj;  // [D, H·V]

 private:
  LinearAttentionConfig config_;
  int64_t H_, K_, V_;
};

// Per-head key dim K = head_dim, or expand_k·D / H; value dim V = expand_v·head_dim when
// head_dim is given, else expand_v·D / H (fla's value_dim = expand_v·D split over the heads).
// ValueError (prefixed with [who]) when the widths are not whole multiples of num_heads.
// Shared by linear_attention, retnet and gla, whose options name these fields alike.
void linear_attn_head_dims(const char* who, int64_t num_heads, int64_t head_dim, double expand_k, double expand_v,
                           int64_t d_model, int64_t& K, int64_t& V);

// Feature maps of linear attention by name (identity, relu, elu_plus_one, silu); ValueError
// listing them for another name.
Tensor linear_attention_feature_map(const std::string& name, const Tensor& x);

MixerSpec linear_attention_mixer();

}  // namespace lnx::modules
