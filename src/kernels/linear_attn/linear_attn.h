// linear_attn: S_t = S_{t−1} + k_t v_tᵀ, o_t = S_tᵀ (scale · q_t) (simple_gla without a gate).
// With options.normalize, o_t /= (scale · q_t·z_t + 1e-10) with z_t = Σ_{s≤t} k_s, as
// flash-linear-attention does. The normaliser z starts at 0 in every call (and for every
// packed sequence): it is not part of the state, so it does not carry across initial_state /
// final_state, and split-and-resume holds only without normalize. Feature maps (making q·z
// positive) are the layer's job.
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs linear_attn_reference(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs linear_attn_recurrent(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs linear_attn_chunk(const TensorDict& inputs, const MechanismOptions& options);

}  // namespace lnx::kernels
