// Random gate inputs for tests and benchmarks (DESIGN.md §8): log-gates drawn as
// logsigmoid(x)/n with x standard normal and n log-uniform in [0.1, 10], so a problem mixes
// gates from nearly 1 to strongly negative (e^{−50} and below).
#pragma once

#include <cmath>

#include "tensor/ops.h"

namespace lnx::kernels {

inline Tensor random_log_gates(const Shape& shape, Generator& gen, DType dtype) {
  Tensor x = randn(shape, gen, DType::f64);
  Tensor n = exp(uniform(shape, std::log(0.1), std::log(10.0), gen, DType::f64));
  return div(logsigmoid(x), n).to(dtype);
}

}  // namespace lnx::kernels
