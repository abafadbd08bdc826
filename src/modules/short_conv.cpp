#include "modules/short_conv.h"

#include <cmath>

namespace lnx::modules {

ShortConv::ShortConv(int64_t dim, int64_t width, bool bias, bool silu_activation_, Generator& gen)
    : weight(add_parameter("weight", init_uniform({dim, width}, 1.0 / std::sqrt(static_cast<double>(width)), gen))),
      silu_activation(silu_activation_) {
  if (bias) this->bias = &add_parameter("bias", init_uniform({dim}, 1.0 / std::sqrt(static_cast<double>(width)), gen));
}

core::ConvOutput ShortConv::forward(const Tensor& x, const Tensor& cache, const Tensor& cu_seqlens) const {
  return core::causal_conv1d(x, weight, bias ? *bias : Tensor(), silu_activation, cache, cu_seqlens);
}

}  // namespace lnx::modules
