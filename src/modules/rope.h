// Rotary position embedding (RoFormer; the half-split layout of GPT-NeoX and Llama):
// for pairs (x_i, x_{i+D/2}), i < D/2, at position p with angle p·θ^(−2i/D):
//   x_i' = x_i cos − x_{i+D/2} sin,   x_{i+D/2}' = x_{i+D/2} cos + x_i sin.
// x [B, T, H, D] (D even); positions [B, T] integer.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace lnx::modules {

Tensor apply_rope(const Tensor& x, const Tensor& positions, double theta);

// Position of every token: sequence n's tokens continue from start[n] (tokens it has seen
// before; empty = all 0). Without cu_seqlens, sequence n is row n of [B, T]; with it (B = 1)
// the sequences are packed along T. Returns [B, T] i64.
Tensor token_positions(int64_t B, int64_t T, const Tensor& cu_seqlens, const std::vector<int64_t>& start);

}  // namespace lnx::modules
