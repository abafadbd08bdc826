// gated_delta_rule (Gated DeltaNet): the delta rule with a scalar decay per token and head.
//   S' = exp(g_t) S_{t−1},   S_t = S' + β_t k_t (v_t − S'ᵀ k_t)ᵀ,   o_t = S_tᵀ (scale · q_t)
// g [B,T,H] log gates (≤ 0), β [B,T,H] in (0, 1); q, k L2-normalised as for delta_rule (or
// with the option use_qk_l2norm). The chunk form (WY / UT transform, common/wy_transform.h)
// forms only exp of differences of cumulative log gates, so it stays finite for gates far
// below zero.
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs gated_delta_rule_reference(const TensorDict& inputs,
                                            const MechanismOptions& options);
MechanismOutputs gated_delta_rule_recurrent(const TensorDict& inputs,
                                            const MechanismOptions& options);
MechanismOutputs gated_delta_rule_chunk(const TensorDict& inputs, const MechanismOptions& options);

}  // namespace lnx::kernels
