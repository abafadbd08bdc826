// mamba2 (SSD, state-space duality), per head h with a scalar A_h:
//   Δ_t = softplus(dt_t + dt_bias),  A = −exp(A_log),
//   S_t = exp(Δ_t A) S_{t−1} + Δ_t B_t x_tᵀ,   y_t = S_tᵀ (scale · C_t) + D x_t.
// Inputs (the state dimension, Mamba's N, plays K; the head dim P plays V):
//   x [B,T,H,P], dt [B,T,H] (raw, before softplus), A_log [H], dt_bias [H] (optional),
//   B [B,T,H,K], C [B,T,H,K], D [H] (optional skip), initial_state [N,H,K,P].
// Grouped B/C (shared across heads) are the layer's job: it broadcasts them to [B,T,H,K].
// scale defaults to 1 here (Mamba reads C unscaled); options.scale overrides it.
// Without D this is simple_gla with q = C, k = B, v = Δ·x, g = Δ·A (a test checks it); the
// recurrent and chunk forms are exactly that composition (ops around simple_gla's forms,
// differentiated by autodiff through simple_gla's hand-written vjps).
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs mamba2_reference(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs mamba2_recurrent(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs mamba2_chunk(const TensorDict& inputs, const MechanismOptions& options);

}  // namespace lnx::kernels
