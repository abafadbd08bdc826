// gla: gated linear attention with a per-key-dimension gate (Yang et al., 2023).
//   S_t = Diag(exp(g_t)) S_{t−1} + k_t v_tᵀ,   o_t = S_tᵀ (scale · q_t)
// q, k, g [B,T,H,K] (g: log gates ≤ 0), v [B,T,H,V], states [N,H,K,V].
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs gla_reference(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs gla_recurrent(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs gla_chunk(const TensorDict& inputs, const MechanismOptions& options);

}  // namespace lnx::kernels
