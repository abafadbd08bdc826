// delta_rule (DeltaNet): linear attention whose state is corrected toward each new value.
//   u_t = β_t (v_t − S_{t−1}ᵀ k_t),   S_t = S_{t−1} + k_t u_tᵀ,   o_t = S_tᵀ (scale · q_t)
// β [B,T,H] in (0, 1). q and k are expected L2-normalised (x / sqrt(Σx² + 1e-6)), by the
// caller or, with the option use_qk_l2norm, inside the kernel (gradients flow through it).
// The fast forms share the delta-family kernels (common/delta_family.h) with
// gated_delta_rule; the chunk form is the WY / UT transform (common/wy_transform.h).
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs delta_rule_reference(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs delta_rule_recurrent(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs delta_rule_chunk(const TensorDict& inputs, const MechanismOptions& options);

}  // namespace lnx::kernels
