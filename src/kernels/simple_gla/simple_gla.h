// simple_gla: gated linear attention with one scalar gate per head and token.
//   S_t = exp(g_t) S_{t−1} + k_t (vs_t v_t)ᵀ,   o_t = S_tᵀ (scale · q_t) + skip · v_t
// g [B,T,H] (data-dependent, log space) and/or g_gamma [H] (a fixed per-head log decay, as
// RetNet's retention); without either it is plain linear attention. The value maps
// v_scale [B,T,H] (vs, default 1) and skip [H] (default 0) are Mamba-2's Δ and D: mamba2 is
// simple_gla with q = C, k = B, v = x, g = Δ·A, v_scale = Δ, skip = D.
// retention, linear_attn and mamba2 run on simple_gla's forms.
#pragma once

#include "kernels/mechanism.h"

namespace lnx::kernels {

// RetNet's fixed decays: g_gamma_h = log(1 − 2^(−5−h)).
Tensor retention_log_decays(int64_t H, DType dtype);

}  // namespace lnx::kernels
