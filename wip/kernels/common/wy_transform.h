// The WY / UT-transform chunk algorithm of the delta-rule family (scalar log gate per token
// and head, or none). Per (sequence, head) and chunk of L tokens, with S0 the state at the
// chunk start and b_i = Σ_{m≤i} g_m the chunk-local cumulative log gate (Γ_ij = exp(b_i − b_j),
// formed only for j ≤ i, so |Γ| ≤ 1 however negative the gates):
//   A  = strictLower(diag(β) K Kᵀ ⊙ Γ),  T = (I + A)⁻¹          (forward substitution)
//   W  = T diag(β e^b) K,  Ū = T diag(β) V,  U = Ū − W S0      (U: the u_t of the chunk)
//   O  = diag(e^b) (scale Q) S0 + ((scale Q) Kᵀ ⊙ Γ ⊙ M) U     (M: j ≤ i)
//   S_L = e^{b_L} S0 + (diag(e^{b_L − b}) K)ᵀ U
// When a gradient is needed the forward keeps, per chunk, S0, W, U, T, (K Kᵀ) ⊙ Γ, P and Γ
// (K·V/C + K + V + 4C numbers a token); the backward runs over the chunks in reverse carrying
// dS and recomputes only the row scalings and gates. Everything but the triangular solve and
// a few row scalings is a GEMM (lnx::gemm, single-threaded inside the (sequence, head) loop).
#pragma once

#include "kernels/common/delta_family.h"

namespace lnx::kernels {

// The kernel behind delta_chunk_kernel(chunk_size) (declared in delta_family.h).
Tensor wy_chunk_forward(const DeltaArgs& a, int64_t chunk_size, Tensor& o, Tensor& final_state,
                        bool keep);
DeltaGrads wy_chunk_backward(const DeltaArgs& a, int64_t chunk_size, const Tensor& saved,
                             const Tensor& d_o, const Tensor& d_final);

}  // namespace lnx::kernels
