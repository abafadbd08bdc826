// Internal to the delta-rule family (delta_rule, gated_delta_rule, kda): what the three
// declarations share. Per token and head, with the gate absent (delta_rule), a scalar
// (gated_delta_rule) or a vector over the key dimension (kda):
//   S' = Diag(exp(g_t)) S_{t−1},  u_t = β_t (v_t − S'ᵀ k_t),  S_t = S' + k_t u_tᵀ,
//   o_t = S_tᵀ (scale · q_t)
// q and k are expected L2-normalised, by the caller or inside the forms (use_qk_l2norm).
// The fast forms are primitives: one recurrent kernel for the family (recurrent.cpp) and one
// WY chunk driver (wy_chunk_internal.h) with a gate policy, the scalar one here
// (scalar_gate_chunk.cpp) and kda's per-key one in kda/.
#pragma once

#include <vector>

#include "kernels/primitive.h"

namespace lnx::kernels::delta_detail {

// How the state decays before each token: not at all, g [B,T,H], or g [B,T,H,K].
enum class Gate { none, scalar, per_key };

// The options of all three mechanisms.
struct DeltaRuleOptions {
  bool use_qk_l2norm = false;
  template <class V> void visit(V&& v) {
    v("use_qk_l2norm", use_qk_l2norm,
      "L2-normalise q and k inside the kernel, x / sqrt(sum x^2 + 1e-6); gradients flow through it");
  }
};

// q, k, v, beta, g (unless gate is none), initial_state.
std::vector<InputSpec> input_specs(Gate gate);

// A member of the family as it declares itself.
struct Member {
  const char* name;
  const char* description;  // one line
  const char* equation;     // the recurrence per head, plain text
  Gate gate;
  FormFn reference;
  const Primitive* chunk;  // the chunk form's primitive (inputs: the mechanism's)
};

// The member's declaration: its inputs (with the gate's g), the options, random inputs (unit
// q and k, β = sigmoid(randn), log gates), the delta-rule FLOP count, its reference and chunk
// forms and the family's recurrent form.
Mechanism family_mechanism(const Member& member);

// The reference form: the recurrence token by token with tensor ops, after the in-kernel
// L2 norm when asked. log_gates [B·T, H, K or 1, 1] (undefined: no gate) decays the state
// before token t: S' = exp(log_gates[t]) ⊙ S.
MechanismOutputs delta_reference(const Call& c, const Tensor& log_gates);

// Runs p (whose inputs are the mechanism's) on the call, q and k L2-normalised first when
// use_qk_l2norm asks for it.
MechanismOutputs run_delta_primitive(const Primitive& p, const Call& c);

// o [B,T,H,V] and final_state [N,H,K,V], uninitialised (the kernels write all of them).
KernelOutputs empty_outputs(const KernelArgs& a);
// The gradient of every input given, uninitialised (the kernels write every row of them).
TensorDict empty_gradients(const KernelArgs& a);

// The fused token loop (recurrent.cpp), named after the mechanism of the gate.
const Primitive& recurrent_primitive(Gate gate);
// The WY chunk form with a scalar gate or none (scalar_gate_chunk.cpp).
const Primitive& scalar_gate_chunk_primitive(Gate gate);

}  // namespace lnx::kernels::delta_detail
