// delta_rule (DeltaNet): linear attention whose state is corrected toward each new value.
//   u_t = β_t (v_t − S_{t−1}ᵀ k_t),   S_t = S_{t−1} + k_t u_tᵀ,   o_t = S_tᵀ (scale · q_t)
// β [B,T,H] in (0, 1). q and k are expected L2-normalised (x / sqrt(Σx² + 1e-6)), by the
// caller or, with the option use_qk_l2norm, inside the forms (gradients flow through it).
// The fast forms are the delta family's (common/delta_family/): the token loop, and the WY /
// UT-transform chunk form with no gate.
#include "kernels/builtin.h"
#include "kernels/common/delta_family/delta_family_internal.h"

namespace lnx::kernels {

namespace {

using namespace delta_detail;

// The definition: the family's reference recurrence with S' = S_{t−1}.
MechanismOutputs reference(const Call& c) {
  return delta_reference(c, [](int64_t, const Tensor& S) { return S; });
}

MechanismOutputs chunk(const Call& c) { return run_delta_primitive(scalar_gate_chunk_primitive(Gate::none), c); }

}  // namespace

Mechanism delta_rule_mechanism() {
  Mechanism m = family_declaration(Gate::none);
  m.name = "delta_rule";
  m.description = "DeltaNet: linear attention with the delta rule's corrective update (q, k L2-normalised)";
  m.equation = "u_t = beta_t (v_t - S_{t-1}^T k_t),  S_t = S_{t-1} + k_t u_t^T,  o_t = S_t^T (scale q_t)";
  m.forms[Form::reference] = reference;
  m.forms[Form::chunk] = chunk;
  return m;
}

}  // namespace lnx::kernels
