// Pieces the mechanisms' declarations share: the q/k/v/initial_state input specs, random
// q/k/v inputs, and the FLOP counts of the two families of recurrences.
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

inline InputSpec initial_state_spec() {
  return InputSpec::optional_input("initial_state", {"N", "H", "K", "V"}, "state before the first token");
}

// q [B,T,H,K], k [B,T,H,K], v [B,T,H,V].
inline std::vector<InputSpec> qkv_specs(const std::string& qk_note = "") {
  return {InputSpec::required_input("q", {"B", "T", "H", "K"}, "queries" + qk_note),
          InputSpec::required_input("k", {"B", "T", "H", "K"}, "keys" + qk_note),
          InputSpec::required_input("v", {"B", "T", "H", "V"}, "values")};
}

// Standard-normal q, k, v; with unit_norm_qk, q and k are L2-normalised per token and head
// (what the delta rules expect, keeping their recurrence a contraction).
inline TensorDict random_qkv(const ProblemSize& s, Generator& gen, DType dtype, bool unit_norm_qk = false) {
  TensorDict d;
  Tensor q = randn({s.B, s.T, s.H, s.K}, gen, dtype), k = randn({s.B, s.T, s.H, s.K}, gen, dtype);
  d.insert("q", unit_norm_qk ? l2_normalize(q) : q);
  d.insert("k", unit_norm_qk ? l2_normalize(k) : k);
  d.insert("v", randn({s.B, s.T, s.H, s.V}, gen, dtype));
  return d;
}

// Flat token rows [B·T, H, D] of a [B, T, H, D] input (the reference forms index them by row).
inline Tensor token_rows(const Tensor& x) { return reshape(x, {x.size(0) * x.size(1), x.size(2), x.size(3)}); }

// Linear-attention-like recurrences (linear_attn, simple_gla, gla, mamba2), per token and
// head: the state update (2KV) and the read (2KV); the chunk form adds the intra-chunk
// scores q kᵀ (2·S·K) and their product with v (2·S·V), the masked half counted as done.
inline double linear_recurrence_flops(const ProblemSize& s, Form form, int64_t chunk) {
  const double tokens = static_cast<double>(s.B) * s.T * s.H;
  double per = 4.0 * s.K * s.V;
  if (form == Form::chunk) per += 2.0 * chunk * (s.K + s.V);
  return tokens * per;
}

// Delta rules, per token and head. Recurrent: Sᵀk, the rank-one update and the read (2KV
// each). Chunk (C tokens): the state products W S0, Q S0 and Kᵀ U (2KV each), the
// intra-chunk products K Kᵀ, T·diag(β)K, Q Kᵀ (2CK each), T·diag(β)V and P U (2CV each) and
// the triangular solve (C²/3); masked halves counted as done.
inline double delta_rule_flops(const ProblemSize& s, Form form, int64_t chunk) {
  const double tokens = static_cast<double>(s.B) * s.T * s.H;
  double per = 6.0 * s.K * s.V;
  if (form == Form::chunk) per += 6.0 * chunk * s.K + 4.0 * chunk * s.V + chunk * chunk / 3.0;
  return tokens * per;
}

}  // namespace lnx::kernels
