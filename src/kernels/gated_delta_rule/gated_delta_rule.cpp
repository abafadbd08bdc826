// gated_delta_rule (Gated DeltaNet): the delta rule with a scalar decay per token and head.
//   S' = exp(g_t) S_{t−1},   S_t = S' + β_t k_t (v_t − S'ᵀ k_t)ᵀ,   o_t = S_tᵀ (scale · q_t)
// g [B,T,H] log gates (≤ 0), β [B,T,H] in (0, 1); q, k L2-normalised as for delta_rule (or
// with the option use_qk_l2norm). The fast forms are the delta family's
// (common/delta_family/); the chunk form (the WY / UT transform with a scalar gate) forms
// only exp of differences of cumulative log gates, so it stays finite for gates far below 0.
#include "kernels/builtin.h"
#include "kernels/common/delta_family/delta_family_internal.h"

namespace lnx::kernels {

namespace {

using namespace delta_detail;

// The definition: S' = exp(g_t) S_{t−1} in the family's reference recurrence.
MechanismOutputs reference(const Call& c) {
  const SequenceLayout& L = c.layout;
  Tensor gf = reshape(c["g"], {L.B * L.T, L.H, 1, 1});  // [B·T, H, 1, 1]
  return delta_reference(c, [&](int64_t t, const Tensor& S) { return mul(S, exp(select(gf, 0, t))); });
}

MechanismOutputs chunk(const Call& c) { return run_delta_primitive(scalar_gate_chunk_primitive(Gate::scalar), c); }

}  // namespace

Mechanism gated_delta_rule_mechanism() {
  Mechanism m = family_declaration(Gate::scalar);
  m.name = "gated_delta_rule";
  m.description = "Gated DeltaNet: the delta rule with a scalar decay per token and head (q, k L2-normalised)";
  m.equation = "S' = exp(g_t) S_{t-1},  S_t = S' + beta_t k_t (v_t - S'^T k_t)^T,  o_t = S_t^T (scale q_t)";
  m.forms[Form::reference] = reference;
  m.forms[Form::chunk] = chunk;
  return m;
}

}  // namespace lnx::kernels
