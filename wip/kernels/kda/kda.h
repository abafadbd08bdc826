// kda (Kimi Delta Attention): the gated delta rule with a decay per key dimension.
//   S' = Diag(exp(g_t)) S_{t−1},   S_t = S' + β_t k_t (v_t − S'ᵀ k_t)ᵀ,   o_t = S_tᵀ (scale · q_t)
// g [B,T,H,K] log gates (≤ 0), β [B,T,H] in (0, 1); q, k L2-normalised as for delta_rule (or
// with the option use_qk_l2norm). The recurrent form is the delta family's
// (common/delta_recurrent.cpp); the chunk form (chunk.cpp) is the WY / UT transform with
// per-dimension decays, formed only as exp of differences of cumulative log gates.
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs kda_reference(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs kda_recurrent(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs kda_chunk(const TensorDict& inputs, const MechanismOptions& options);

}  // namespace lnx::kernels
