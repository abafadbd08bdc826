// Llama-style causal softmax attention (the layer of flash-linear-attention's
// fla/layers/attn.py): q/k/v projections (biases optional, as Qwen2's), grouped KV heads,
// optional per-head RMSNorm of q and k before RoPE (Qwen3's QK-norm), RoPE on q and k (on all
// of each head's dims or on the first rope_dim, as Bamba's partial rotary factor), optional
// sliding window, output projection. Its state is the KV cache.
// Dimension letters: B batch, T time, D model width, H query heads, HK key/value heads,
// Dh head dim, N sequences, L cached tokens per sequence.
//
//   x [B,T,D] → q [B,T,H,Dh], k, v [B,T,HK,Dh] → [q_norm(q), k_norm(k)] → RoPE(q, k)
//     → softmax_attention → [⊙ sigmoid(g_proj x)] → o_proj
//   state: "k_cache", "v_cache" [N, L, HK, Dh] (keys after RoPE), "cache_lengths" [N] i64:
//   sequences with different numbers of tokens keep their caches right-padded to the longest;
//   with a sliding window only the last window − 1 keys are kept; "positions" [N] i64
#pragma once

#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/norm.h"
#include "modules/rope.h"

namespace lnx::modules {

// The attention mixer's options (defaults: fla's Attention layer without qk-norm).
struct AttentionConfig {
  int64_t num_heads = 4;
  int64_t head_dim = 0;
  int64_t num_kv_heads = 0;
  double rope_theta = 10000.0;
  int64_t window = 0;
  int64_t chunk_size = 64;
  bool qkv_bias = false;
  bool o_bias = false;
  bool qk_norm = false;
  int64_t rope_dim = 0;
  bool output_gate = false;
  std::string rope_scaling = "none";
  double rope_scaling_factor = 1.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  int64_t rope_original_context = 8192;

  template <class V> void visit(V&& v) {
    v("num_heads", num_heads, "query heads", mixer_bounds::heads);
    v("head_dim", head_dim, "dim per head (0 = d_model / num_heads; even, for RoPE)", mixer_bounds::dim);
    v("num_kv_heads", num_kv_heads, "grouped key/value heads, dividing num_heads (0 = num_heads)", mixer_bounds::heads);
    v("rope_theta", rope_theta, "RoPE base", mixer_bounds::rope_theta);
    v("window", window, "sliding attention window (0 = unlimited)", core::Bounds{0, 1099511627776.0});
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)", mixer_bounds::chunk);
    v("qkv_bias", qkv_bias, "biases on the q, k and v projections (Qwen2; Llama's attention_bias)");
    v("o_bias", o_bias, "a bias on the output projection (Llama's attention_bias)");
    v("qk_norm", qk_norm, "RMSNorm of each head's q and k before RoPE (Qwen3), eps the model's norm_eps");
    v("rope_dim", rope_dim, "dims of each head that RoPE rotates, the first ones (0 = all; HF's partial_rotary_factor)",
      mixer_bounds::dim);
    v("output_gate", output_gate,
      "gated attention (Qwen3-Next): the heads' output times sigmoid(g_proj x) before o_proj (bias as qkv_bias)");
    v("rope_scaling", rope_scaling, "RoPE frequency scaling: none, linear or llama3 (Llama 3.1)");
    v("rope_scaling_factor", rope_scaling_factor, "linear/llama3: the factor frequencies are divided by",
      core::Bounds{0, 1e6});
    v("rope_low_freq_factor", rope_low_freq_factor, "llama3: low_freq_factor", core::Bounds{0, 1e6});
    v("rope_high_freq_factor", rope_high_freq_factor, "llama3: high_freq_factor", core::Bounds{0, 1e6});
    v("rope_original_context", rope_original_context, "llama3: original_max_position_embeddings",
      core::Bounds{1, 1099511627776.0});
  }
};

class Attention : public Mixer {
 public:
  struct Sizes {
    int64_t D = 0, H = 0, HK = 0, Dh = 0;
  };

 private:
  Sizes sizes_;  // first: the projections below are built from it

 public:
  Attention(const AttentionConfig& config, const ModelDims& dims, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  // 2 per projection weight, plus 4·Dh per query head and attended key (2·Dh for q·k, 2·Dh
  // for p·v), averaged over the positions 1 … context of a causal sequence (about context/2
  // keys per query, capped by the window).
  double flops_per_token(int64_t context) const override;
  core::LayerState select_sequence(const core::LayerState& state, int64_t n) const override;
  const Sizes& sizes() const { return sizes_; }

  Linear& q_proj;             // [H·Dh, D]
  Linear& k_proj;             // [HK·Dh, D]
  Linear& v_proj;             // [HK·Dh, D]
  Linear& o_proj;             // [D, H·Dh]
  Linear* g_proj = nullptr;   // [H·Dh, D], with output_gate
  RMSNorm* q_norm = nullptr;  // weight [Dh], with qk_norm
  RMSNorm* k_norm = nullptr;  // weight [Dh], with qk_norm

 private:
  double rope_theta_;
  int64_t rope_dim_;              // the first rope_dim_ of each head's Dh dims are rotated
  std::vector<double> inv_freq_;  // [rope_dim_ / 2], scaled
  int64_t window_, chunk_size_;
};

MixerSpec attention_mixer();

}  // namespace lnx::modules
