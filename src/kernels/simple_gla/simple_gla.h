// simple_gla: gated linear attention with one scalar gate per head and token.
//   S_t = exp(g_t) S_{t−1} + k_t v_tᵀ,   o_t = S_tᵀ (scale · q_t)
// g [B,T,H] (data-dependent, log space) and/or g_gamma [H] (a fixed per-head log decay, as
// RetNet's retention); without either it is plain linear attention.
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs simple_gla_reference(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs simple_gla_recurrent(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs simple_gla_chunk(const TensorDict& inputs, const MechanismOptions& options);

// RetNet's fixed decays: g_gamma_h = log(1 − 2^(−5−h)).
Tensor retention_log_decays(int64_t H, DType dtype);

}  // namespace lnx::kernels
