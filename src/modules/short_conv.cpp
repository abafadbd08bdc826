#include "modules/short_conv.h"

#include <cmath>

#include "tensor/ops.h"

namespace lnx::modules {

ShortConv::ShortConv(int64_t dim, int64_t width, bool bias, bool silu_activation_, Generator& gen, double std)
    : weight(add_parameter("weight",
                           std > 0 ? init_normal({dim, width}, std, gen)
                                   : init_uniform({dim, width}, 1.0 / std::sqrt(static_cast<double>(width)), gen))),
      silu_activation(silu_activation_) {
  if (!bias) return;
  this->bias = &add_parameter(
      "bias", std > 0 ? zeros({dim}) : init_uniform({dim}, 1.0 / std::sqrt(static_cast<double>(width)), gen));
}

Tensor ShortConv::forward(const Tensor& x, const MixerInput& in, const char* name, core::LayerState& state_out) const {
  core::ConvOutput r = forward(x, in.state ? in.state->get(name) : Tensor(), in.cu_seqlens);
  state_out.set(name, r.cache);  // [N, W−1, D]
  return r.y;
}

core::ConvOutput ShortConv::forward(const Tensor& x, const Tensor& cache, const Tensor& cu_seqlens) const {
  return core::causal_conv1d(x, weight, bias ? *bias : Tensor(), silu_activation, cache, cu_seqlens);
}

}  // namespace lnx::modules
