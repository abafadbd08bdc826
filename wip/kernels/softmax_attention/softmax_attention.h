// softmax_attention: causal softmax attention, the quadratic baseline the linear mechanisms are
// measured against.
//   o_i = Σ_j softmax_j(scale · q_i·k_j) v_j   over the keys j the query i sees:
//   j ≤ i (causal) and, with options.window = W > 0, j > i − W (sliding window).
// Grouped KV heads: k [B,T,HK,K], v [B,T,HK,V] with H divisible by HK; query head h uses kv
// head h / (H/HK). A KV cache (k_cache [N,Tc,HK,K], v_cache [N,Tc,HK,V]) holds the keys and
// values of Tc earlier tokens of every sequence: new query i is at position Tc + i and sees
// the cache as well (the window counts cache positions too). Attention has no [N,H,K,V]
// state: its "state" is the cache, returned as MechanismOutputs::extra_state {"k_cache",
// "v_cache"} = [cache; new keys] (when every sequence has the same length; with cu_seqlens and
// unequal lengths it is left out).
//   reference — per sequence: scores, mask, softmax, matmul, with tensor ops (autodiff).
//   chunk     — tiled (flash-attention style) online softmax, memory linear in T; hand-written
//               tiled backward that recomputes the probabilities from the saved log-sum-exp.
//   recurrent — decoding against the cache, one query row at a time (any number of new
//               tokens); hand-written row-by-row backward.
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs softmax_attention_reference(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs softmax_attention_recurrent(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs softmax_attention_chunk(const TensorDict& inputs, const MechanismOptions& options);

}  // namespace lnx::kernels
