// DeltaNet (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over
// Sequence Length"; flash-linear-attention's DeltaNet layer), and the parts the delta-rule
// family (DeltaNet, Gated DeltaNet, KDA) shares: q/k/v projections, short convolutions with
// SiLU and their caches, and the kernel call with q, k L2-normalised inside the kernel.
//
// Dimension letters: B batch, T time, D model width, H heads, K key dim per head, V value dim
// per head (expand_v · K), N sequences, W conv width.
//
//   x [B,T,D] → q, k [B,T,H,K], v [B,T,H,V] (Linear → short conv + SiLU, or SiLU alone)
//             → β = σ(b_proj x) [B,T,H] → delta_rule (L2-norm on q, k) → o [B,T,H,V]
//             → RMSNorm per head (gated by silu(g_proj x) with use_output_gate) → o_proj → y
#pragma once

#include <string>

#include "kernels/mechanism.h"
#include "modules/linear.h"
#include "modules/mixer.h"
#include "modules/norm.h"
#include "modules/short_conv.h"

namespace lnx::modules {

// Options of the delta-rule mixers (DeltaNet, Gated DeltaNet, KDA), with DeltaNet's defaults
// (fla's DeltaNet: expand_v 1, no output gate). Chunk size 32, not 64: on CPU the intra-chunk
// work (∝ chunk size) outweighs the state products at these head sizes; a training step of the
// -small/-tiny presets is 2–10% faster (BENCHMARKS.md).
struct DeltaFamilyConfig {
  int64_t num_heads = 4;
  int64_t head_dim = 0;
  double expand_v = 1.0;
  bool use_short_conv = true;
  int64_t conv_size = 4;
  bool use_output_gate = false;
  int64_t chunk_size = 32;
  int64_t num_v_heads = 0;

  // Every option but num_v_heads (KDA's per-key gates have no grouped-value form).
  template <class V> void visit_shared(V&& v) {
    v("num_heads", num_heads, "heads", mixer_bounds::heads);
    v("head_dim", head_dim, "key dim per head (0 = d_model / num_heads)", mixer_bounds::dim);
    v("expand_v", expand_v, "value dim over key dim per head", mixer_bounds::ratio);
    v("use_short_conv", use_short_conv, "short causal conv (+ SiLU) on q, k, v");
    v("conv_size", conv_size, "short conv kernel width", mixer_bounds::conv);
    v("use_output_gate", use_output_gate, "gated RMSNorm on the output");
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)", mixer_bounds::chunk);
  }
  template <class V> void visit(V&& v) {
    visit_shared(v);
    v("num_v_heads", num_v_heads,
      "value heads, a multiple of num_heads: each q/k head serves num_v_heads / num_heads of them (grouped value "
      "attention, Qwen3-Next's; 0 = num_heads)",
      mixer_bounds::heads);
  }
};

// DeltaNet's options: the family's, with its defaults.
struct DeltaNetConfig : DeltaFamilyConfig {};

// Head sizes of a delta-family layer, validated from its config (ValueError naming `mixer`):
// K = head_dim (0 = D / H, H must divide D), V = expand_v · K (a positive integer), HV value
// heads (num_v_heads, a multiple of H; H without it): v, β, the gates, the state and the output
// have HV heads, and q, k are repeated to them.
struct DeltaDims {
  int64_t D = 0, H = 0, K = 0, V = 0, HV = 0;
};
DeltaDims delta_dims(const char* mixer, const DeltaFamilyConfig& config, const ModelDims& dims);

// Base of the delta-rule mixers: owns q_proj, k_proj, v_proj and the short convs (fla's
// names), reads and writes the "conv_q", "conv_k", "conv_v" and "recurrent" state entries.
class DeltaFamilyMixer : public Mixer {
 public:
  Linear& q_proj;                 // [H·K, D]
  Linear& k_proj;                 // [H·K, D]
  Linear& v_proj;                 // [HV·V, D]
  ShortConv* q_conv1d = nullptr;  // weight [H·K, W]; null without use_short_conv
  ShortConv* k_conv1d = nullptr;
  ShortConv* v_conv1d = nullptr;
  const DeltaDims& sizes() const { return dims_; }

 protected:
  // Linear weights ~ N(0, init_std²) as fla's _init_weights; convs PyTorch's default (ShortConv).
  DeltaFamilyMixer(const DeltaDims& dims, const DeltaFamilyConfig& config, double norm_eps, Generator& gen,
                   double init_std);

  struct QKV {
    Tensor q, k;       // [B, T, H, K]
    Tensor v;          // [B, T, H, V]
    TensorList extra;  // the `extra` projections of x, in order
    Tensor gate;       // g_proj x [B, T, HV·V] with an output gate (add_gated_output), else undefined
  };
  // Projections and short convs (SiLU); the new conv caches go into `state`. The `extra`
  // Linears of x (β, gates) and the output gate's g_proj are projected with q, k, v: one
  // streamed pass over their weights when they are packed for generation.
  QKV project_qkv(const MixerInput& in, core::LayerState& state, const std::vector<const Linear*>& extra = {}) const;
  // Runs `kernel` on inputs (q, k, v, beta, g, …) in the form call_mode picks, from the state's
  // "recurrent" entry, with q and k L2-normalised in the kernel; the final state goes into
  // `state`. Returns o [B, T, H, V].
  Tensor run_kernel(const std::string& kernel, TensorDict inputs, const MixerInput& in, core::LayerState& state) const;
  // [B, T, n·X] → [B, T, n, X] (n heads of X dims), and o [B, T, HV, V] → [B, T, HV·V].
  Tensor heads(const Tensor& x, int64_t dim) const;
  Tensor merge_heads(const Tensor& o) const;
  // The output path DeltaNet and Gated DeltaNet share, registered after the subclass's own
  // parameters: g_proj [H·V, D] and a gated "o_norm" (rmsnorm(o) ⊙ weight ⊙ silu(g_proj x))
  // with use_output_gate, else a plain RMSNorm "o_norm"; then o_proj [D, H·V].
  void add_gated_output(bool use_output_gate, Generator& gen, double init_std);
  Tensor gated_output(const Tensor& o, const QKV& p) const;  // o [B, T, H, V] (gated by p.gate) → [B, T, D]
  double gated_output_flops() const;
  // FLOPs per token of the shared parts: q/k/v projections, the convs, and the delta-rule
  // kernel (Sᵀk, the rank-one write and the read: 6·K·V per head).
  double shared_flops() const;

  DeltaDims dims_;
  int64_t chunk_size_;
  double norm_eps_;
  // Set by add_gated_output (null in KDA, which has its own output path).
  Linear* out_gate_ = nullptr;          // "g_proj" [H·V, D] with use_output_gate
  GatedRMSNorm* gated_norm_ = nullptr;  // "o_norm" [V] with use_output_gate: rmsnorm(o) ⊙ silu(g)
  RMSNorm* plain_norm_ = nullptr;       // "o_norm" [V] otherwise
  Linear* out_proj_ = nullptr;          // "o_proj" [D, H·V]
};

class DeltaNet : public DeltaFamilyMixer {
 public:
  DeltaNet(const DeltaNetConfig& config, const ModelDims& dims, Generator& gen);
  MixerOutput forward(const MixerInput& in) const override;
  double flops_per_token(int64_t context) const override;

  Linear& b_proj;  // [H, D]
};

MixerSpec deltanet_mixer();
// The delta family's preset sizes: heads of 32 (tiny) or 64 (small) dims.
void set_delta_preset_sizes(DeltaFamilyConfig& c, int64_t d_model, PresetScale scale);

}  // namespace lnx::modules
