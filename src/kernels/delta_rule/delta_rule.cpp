// delta_rule (DeltaNet): linear attention whose state is corrected toward each new value.
//   u_t = β_t (v_t − S_{t−1}ᵀ k_t),   S_t = S_{t−1} + k_t u_tᵀ,   o_t = S_tᵀ (scale · q_t)
// β [B,T,H] in (0, 1). q and k are expected L2-normalised (x / sqrt(Σx² + 1e-6)), by the
// caller or, with the option use_qk_l2norm, inside the forms (gradients flow through it).
// The fast forms are the delta family's (common/delta_family/): the token loop, and the WY /
// UT-transform chunk form without a gate.
#include "kernels/builtin.h"
#include "kernels/common/delta_family/delta_family_internal.h"

namespace lnx::kernels {

using namespace delta_detail;

Mechanism delta_rule_mechanism() {
  // The definition: the family's recurrence with S' = S_{t−1} (no gate).
  FormFn reference = [](const Call& c) { return delta_reference(c, Tensor()); };
  return family_mechanism({"delta_rule", "DeltaNet: linear attention with the delta rule's corrective update",
                           "u_t = beta_t (v_t - S_{t-1}^T k_t),  S_t = S_{t-1} + k_t u_t^T,  o_t = S_t^T (scale q_t)",
                           Gate::none, reference, &scalar_gate_chunk_primitive(Gate::none)});
}

}  // namespace lnx::kernels
