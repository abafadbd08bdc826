// Causal depthwise 1-d convolution over time, as Mamba and the short convolutions of
// DeltaNet-style layers use it:
//   y[t, d] = act(bias[d] + Σ_{w<W} weight[d, w] · x[t − (W−1) + w, d])
// with x before the first token taken from the conv cache (the W−1 previous inputs; zeros for
// a fresh sequence). Dimension letters: B batch, T time, D channels, W kernel width,
// N sequences (B, or cu_seqlens' count when packed).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace lnx::core {

struct ConvOutput {
  Tensor y;      // [B, T, D]
  Tensor cache;  // [N, W−1, D]: each sequence's last W−1 inputs (earlier cache rows if shorter)
};

// x [B, T, D]; weight [D, W]; bias [D] or undefined; cache [N, W−1, D] or undefined;
// cu_seqlens [N+1] or undefined (then N = B; with it B must be 1). Differentiable in x,
// weight, bias and cache.
ConvOutput causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation,
                         const Tensor& cache, const Tensor& cu_seqlens);

// The same, composed of tensor ops (the definition the fused kernel is tested against).
ConvOutput causal_conv1d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation,
                                   const Tensor& cache, const Tensor& cu_seqlens);

namespace detail {
// The argument checks both forms share (one place, so the two raise the same errors): throws
// ShapeError / DTypeError / ValueError naming the problem; returns each sequence's length
// (N of them: B copies of T, or cu_seqlens' lengths).
std::vector<int64_t> check_causal_conv1d_args(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                              const Tensor& cache, const Tensor& cu_seqlens);
}  // namespace detail

}  // namespace lnx::core
