// The block protocol every token mixer implements, the mixer configuration and the mixer
// registry. Dimension letters: B batch, T time, D model width, N sequences.
//
//   forward(x [B, T, D], state, cu_seqlens, mode) → (y [B, T, D], new state)
//
// A mixer reads its state (LayerState: recurrent state, conv caches, KV cache; empty = fresh
// sequences) and returns the state after the call's tokens. With cu_seqlens (B = 1) the
// sequences are packed along T; a padded batch with a mask goes through forward_masked, which
// packs it. Mode::automatic picks the recurrent kernel form for short inputs and the chunk
// form otherwise (core/mode.h); either form gives the same result.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/mode.h"
#include "core/state.h"
#include "kernels/mechanism.h"
#include "modules/module.h"

namespace lnx::modules {

// Every option a mixer may read; each mixer's spec lists the keys it accepts (a config giving
// another key is rejected) and its own defaults.
struct MixerConfig {
  int64_t num_heads = 4;
  int64_t head_dim = 0;         // query/key dim per head; 0 = expand_k · D / num_heads
  double expand_k = 1.0;
  double expand_v = 1.0;        // value dim per head = expand_v · head_dim
  int64_t num_kv_heads = 0;     // attention: grouped KV heads; 0 = num_heads
  bool use_short_conv = true;
  int64_t conv_size = 4;
  bool use_output_gate = true;  // gated output norm (linear-attention layers)
  std::string feature_map = "identity";  // linear_attention: identity, relu, elu_plus_one, silu
  bool normalize = false;       // linear_attention: divide by q·Σk
  double rope_theta = 10000.0;  // attention
  int64_t window = 0;           // attention: sliding window (0 = none)
  int64_t state_size = 16;      // mamba / mamba2: d_state
  double expand = 2.0;          // mamba / mamba2: inner width = expand · D
  int64_t dt_rank = 0;          // mamba: 0 = ⌈D / 16⌉
  int64_t n_groups = 1;         // mamba2: groups of B/C
  int64_t gate_low_rank_dim = 16;       // gla / hgrn2-style low-rank gate projections
  double gate_logit_normalizer = 16.0;  // gla
  int64_t chunk_size = 64;      // kernel chunk size (a power of two)
  bool use_mlp = true;          // the block has an MLP after the mixer

  // Calls v(name, field, help) for every field, in this order (config I/O walks it).
  template <class Visitor>
  void visit(Visitor&& v) {
    v("num_heads", num_heads, "heads");
    v("head_dim", head_dim, "query/key dim per head (0 = expand_k * d_model / num_heads)");
    v("expand_k", expand_k, "key width over d_model");
    v("expand_v", expand_v, "value dim over key dim per head");
    v("num_kv_heads", num_kv_heads, "grouped key/value heads (0 = num_heads)");
    v("use_short_conv", use_short_conv, "short causal conv on q, k, v");
    v("conv_size", conv_size, "short conv kernel width");
    v("use_output_gate", use_output_gate, "gated RMSNorm on the output");
    v("feature_map", feature_map, "feature map of q and k: identity, relu, elu_plus_one, silu");
    v("normalize", normalize, "divide the output by q . sum(k)");
    v("rope_theta", rope_theta, "RoPE base");
    v("window", window, "sliding attention window (0 = unlimited)");
    v("state_size", state_size, "SSM state size per channel/head (d_state)");
    v("expand", expand, "inner width over d_model");
    v("dt_rank", dt_rank, "rank of the dt projection (0 = ceil(d_model / 16))");
    v("n_groups", n_groups, "groups of the B/C projections");
    v("gate_low_rank_dim", gate_low_rank_dim, "rank of the gate projection");
    v("gate_logit_normalizer", gate_logit_normalizer, "divides logsigmoid of the gate");
    v("chunk_size", chunk_size, "chunk size of the chunk kernel (power of two)");
    v("use_mlp", use_mlp, "the block has an MLP after the mixer");
  }
};

// What a mixer knows of the model around it.
struct ModelDims {
  int64_t d_model = 0;
  double norm_eps = 1e-6;
  int64_t layer_idx = 0, n_layer = 1;
  double init_std = 0.02;
};

struct MixerInput {
  Tensor x;                                  // [B, T, D]
  const core::LayerState* state = nullptr;   // null or empty: fresh sequences
  Tensor cu_seqlens;                         // [N + 1] when packed (B = 1)
  std::vector<int64_t> seen;                 // [N] tokens each sequence has seen (RoPE); empty = 0
  core::Mode mode = core::Mode::automatic;
};

struct MixerOutput {
  Tensor y;                // [B, T, D]
  core::LayerState state;  // after the call's tokens
};

class Mixer : public Module {
 public:
  virtual MixerOutput forward(const MixerInput& in) const = 0;
  // Forward FLOPs per token at the given context length (projections: 2 per weight; the
  // kernel: its state update and read, or attention's context).
  virtual double flops_per_token(int64_t context) const = 0;
  // Sequence n's state alone (N = 1), as a call on that sequence by itself would return it.
  // By default row n of every state tensor; a mixer with ragged state (attention's KV cache,
  // right-padded to the longest sequence) trims it.
  virtual core::LayerState select_sequence(const core::LayerState& state, int64_t n) const;
};

// A padded batch x [B, T, D] with mask [B, T] (1 = real token): packs the real tokens, runs
// the mixer on them as sequences, and unpacks (zeros at padding). seen: tokens each row has
// seen before (positions for RoPE), as in MixerInput.
MixerOutput forward_masked(const Mixer& mixer, const Tensor& x, const Tensor& mask, const core::LayerState* state,
                           core::Mode mode, std::vector<int64_t> seen = {});

// Sequences and their longest length in a call (N = B without cu_seqlens).
struct CallShape {
  int64_t N = 0, max_len = 0;
};
CallShape call_shape(const MixerInput& in);
// The kernel form for this call (recurrent or chunk).
core::Mode call_mode(const MixerInput& in);

// ---- helpers shared by the mixers ----

// A mixer's kernel call: the form from call_mode(in), chunk_size, in.cu_seqlens, the incoming
// "recurrent" state as initial_state; the final state goes to state_out["recurrent"].
// options may carry mechanism flags (use_qk_l2norm, window, …). Returns o [B, T, H, V].
Tensor run_state_kernel(const std::string& kernel, TensorDict inputs, const MixerInput& in, int64_t chunk_size,
                        core::LayerState& state_out, kernels::MechanismOptions options = {});

// Tokens each of the call's N sequences has seen before it (RoPE positions): in.seen when
// given, else the state's "positions" entry, else 0. Records the positions after the call as
// state_out["positions"] [N] i64, so a state alone resumes at the right position.
std::vector<int64_t> sequence_positions(const MixerInput& in, core::LayerState& state_out);

// chunk_size must be a power of two (ValueError naming the mixer otherwise).
void check_chunk_size(const std::string& mixer, int64_t chunk_size);

// ---- registry ----
struct MixerSpec {
  std::string name;
  std::string description;          // one line: the paper and the layer recipe
  std::string kernel;               // the mechanism it runs (kernels registry)
  std::vector<std::string> keys;    // MixerConfig fields it reads
  MixerConfig defaults;             // its defaults
  std::function<std::unique_ptr<Mixer>(const MixerConfig&, const ModelDims&, Generator&)> make;
};

void register_mixer(MixerSpec spec);
const MixerSpec& mixer_spec(const std::string& name);  // ValueError listing the names
std::vector<std::string> mixer_names();
// Checks the config's generic bounds (finite reals, bounded sizes), then the mixer's own rules.
std::unique_ptr<Mixer> make_mixer(const std::string& name, const MixerConfig& config, const ModelDims& dims,
                                  Generator& gen);
void check_mixer_config(const std::string& name, const MixerConfig& config);

}  // namespace lnx::modules
