// gated_delta_rule (Gated DeltaNet): the delta rule with a scalar decay per token and head.
//   S' = exp(g_t) S_{t−1},   S_t = S' + β_t k_t (v_t − S'ᵀ k_t)ᵀ,   o_t = S_tᵀ (scale · q_t)
// g [B,T,H] log gates (≤ 0), β [B,T,H] in (0, 1); q, k L2-normalised as for delta_rule (or
// with the option use_qk_l2norm). The fast forms are the delta family's
// (common/delta_family/); the chunk form (the WY / UT transform with a scalar gate) forms
// only exp of differences of cumulative log gates, so it stays finite for gates far below 0.
#include "kernels/builtin.h"
#include "kernels/common/delta_family/delta_family_internal.h"

namespace lnx::kernels {

using namespace delta_detail;

Mechanism gated_delta_rule_mechanism() {
  // The definition: the family's recurrence with S' = exp(g_t) S_{t−1}, one gate per head.
  FormFn reference = [](const Call& c) {
    return delta_reference(c, reshape(c["g"], {c.layout.B * c.layout.T, c.layout.H, 1, 1}));
  };
  return family_mechanism({"gated_delta_rule", "Gated DeltaNet: the delta rule with a scalar decay per token and head",
                           "S' = exp(g_t) S_{t-1},  S_t = S' + beta_t k_t (v_t - S'^T k_t)^T,  o_t = S_t^T (scale q_t)",
                           Gate::scalar, reference, &scalar_gate_chunk_primitive(Gate::scalar)});
}

}  // namespace lnx::kernels
