// The short causal convolution of Mamba and DeltaNet-style layers: depthwise over time,
// kernel W (4 by default), optional bias, optional SiLU. x [B, T, D] → [B, T, D]; its cache
// [N, W−1, D] carries the last inputs between calls. Weight and bias ~ U(±1/√W), PyTorch's
// Conv1d default for a depthwise kernel (fan-in W).
#pragma once

#include "core/conv.h"
#include "modules/module.h"

namespace lnx::modules {

class ShortConv : public Module {
 public:
  ShortConv(int64_t dim, int64_t width, bool bias, bool silu_activation, Generator& gen);
  core::ConvOutput forward(const Tensor& x, const Tensor& cache, const Tensor& cu_seqlens) const;
  int64_t width() const { return weight.size(1); }
  Tensor& weight;          // [D, W]
  Tensor* bias = nullptr;  // [D]
  bool silu_activation;
};

}  // namespace lnx::modules
