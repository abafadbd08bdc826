// The short causal convolution of Mamba and DeltaNet-style layers: depthwise over time,
// kernel W (4 by default), optional bias, optional SiLU. x [B, T, D] → [B, T, D]; its cache
// [N, W−1, D] carries the last inputs between calls. Weight and bias ~ U(±1/√W), PyTorch's
// Conv1d default for a depthwise kernel (fan-in W) — what mamba_ssm keeps — or, with std > 0,
// N(0, std²) and a zero bias, what flash-linear-attention's _init_weights gives every Conv1d.
#pragma once

#include "core/conv.h"
#include "modules/mixer.h"
#include "modules/module.h"

namespace lnx::modules {

class ShortConv : public Module {
 public:
  ShortConv(int64_t dim, int64_t width, bool bias, bool silu_activation, Generator& gen, double std = 0);
  core::ConvOutput forward(const Tensor& x, const Tensor& cache, const Tensor& cu_seqlens) const;
  // In a mixer: reads the cache `name` from in.state, writes the new one to state_out[name].
  Tensor forward(const Tensor& x, const MixerInput& in, const char* name, core::LayerState& state_out) const;
  int64_t width() const { return weight.size(1); }
  Tensor& weight;          // [D, W]
  Tensor* bias = nullptr;  // [D]
  bool silu_activation;
};

}  // namespace lnx::modules
