// Rotary position embedding (RoFormer; the half-split layout of GPT-NeoX and Llama):
// for pairs (x_i, x_{i+D/2}), i < D/2, at position p with angle p·θ^(−2i/D):
//   x_i' = x_i cos − x_{i+D/2} sin,   x_{i+D/2}' = x_{i+D/2} cos + x_i sin.
// x [B, T, H, D] (D even); positions [B, T] integer.
#pragma once

#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace lnx::modules {

// One op with its own vjp (the rotation by −angle): first-order gradients only.
Tensor apply_rope(const Tensor& x, const Tensor& positions, double theta);
// The same with the pair frequencies given: inv_freq [D/2], angle = position · inv_freq[i].
Tensor apply_rope(const Tensor& x, const Tensor& positions, const std::vector<double>& inv_freq);

// Frequency scaling of long-context models (transformers' rope_type): "none"; "linear"
// (every frequency / factor); "llama3" (Llama 3.1: frequencies of wavelength above
// original_context / low_freq_factor divided by factor, below original_context /
// high_freq_factor kept, smoothly interpolated between).
struct RopeScaling {
  std::string type = "none";
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  double original_context = 8192;
};
// inv_freq[i] = theta^(−2i/D), i < D/2, scaled. ValueError for an unknown type or bad factors.
std::vector<double> rope_inv_freq(int64_t D, double theta, const RopeScaling& scaling = {});

// Position of every token: sequence n's tokens continue from start[n] (tokens it has seen
// before; empty = all 0). Without cu_seqlens, sequence n is row n of [B, T]; with it (B = 1)
// the sequences are packed along T. Returns [B, T] i64.
Tensor token_positions(int64_t B, int64_t T, const Tensor& cu_seqlens, const std::vector<int64_t>& start);

}  // namespace lnx::modules
