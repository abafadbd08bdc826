// mamba: the Mamba-1 selective scan (Gu & Dao, 2023), per channel d and state index n:
//   Δ_t = softplus(dt_t + dt_bias),  A = −exp(A_log),
//   h_t[n,d] = exp(Δ_t[d]·A[d,n])·h_{t−1}[n,d] + Δ_t[d]·B_t[n]·x_t[d],
//   y_t[d]   = scale · Σ_n C_t[n]·h_t[n,d] + D[d]·x_t[d].
// Layout: the heads H are the groups of grouped B/C (mamba_ssm's ngroups; H = 1 is Mamba's
// shared B/C), the state dim N plays K and the channels of a group play V, so the channel
// axis of Mamba (d_inner) is H·V and the state of one (sequence, group) is [K, V]:
//   x [B,T,H,V], dt [B,T,H,V] (raw, before softplus), A_log [H,V,K] (mamba_ssm's
//   [d_inner, d_state] reshaped), dt_bias [H,V] (optional), B [B,T,H,K], C [B,T,H,K],
//   D [H,V] (optional skip), initial_state [N,H,K,V].
// scale defaults to 1 (Mamba reads C unscaled); options.scale multiplies the C·h term only.
// The silu(z) output gate is the layer's job.
//
// The fast forms (recurrent, chunk) are fused kernels over the core scan with inputs
// x, Δ, A [H,K,V], B, C, initial_state and hand-written vjps. dt + dt_bias, A = −exp(A_log)ᵀ
// and the D skip are tensor ops around them (autodiff carries those); Δ = softplus(dt +
// dt_bias) is fused into the recorded node with its own vjp (forms.cpp).
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

MechanismOutputs mamba_reference(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs mamba_recurrent(const TensorDict& inputs, const MechanismOptions& options);
MechanismOutputs mamba_chunk(const TensorDict& inputs, const MechanismOptions& options);

}  // namespace lnx::kernels
