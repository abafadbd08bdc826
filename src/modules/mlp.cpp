#include "modules/mlp.h"

#include <cmath>

#include "tensor/ops.h"

namespace lnx::modules {

SwiGLU::SwiGLU(int64_t dim, int64_t hidden, Generator& gen, double std)
    : gate_proj(add_module("gate_proj", std::make_unique<Linear>(dim, hidden, false, gen, std))),
      up_proj(add_module("up_proj", std::make_unique<Linear>(dim, hidden, false, gen, std))),
      down_proj(add_module("down_proj", std::make_unique<Linear>(hidden, dim, false, gen, std))) {}

Tensor SwiGLU::forward(const Tensor& x) const {
  const TensorList gate_up = linear_group(x, {&gate_proj, &up_proj});  // one pass when packed
  return down_proj.forward(swiglu(gate_up[0], gate_up[1]));
}

int64_t swiglu_hidden(int64_t dim, double hidden_ratio) {
  const double raw = 2.0 / 3.0 * hidden_ratio * static_cast<double>(dim);
  const int64_t multiple = dim >= 256 ? 256 : 32;
  return static_cast<int64_t>(std::ceil(raw / static_cast<double>(multiple))) * multiple;
}

}  // namespace lnx::modules
