#include "core/gating.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/ops.h"

namespace lnx::core {

Tensor logsigmoid_gate(const Tensor& x, double normalizer) { return div(logsigmoid(x), normalizer); }

Tensor softplus_decay(const Tensor& a, const Tensor& A_log, const Tensor& dt_bias) {
  Tensor dt = softplus(dt_bias.defined() ? add(a, dt_bias) : a);
  return mul(neg(exp(A_log)), dt);
}

Tensor dt_bias_init(int64_t n, Generator& gen, double dt_min, double dt_max, double dt_floor, DType dtype) {
  const std::vector<double> u = uniform({n}, 0.0, 1.0, gen, DType::f64).to_vector<double>();
  std::vector<double> out(static_cast<size_t>(n));
  for (size_t i = 0; i < out.size(); ++i) {
    double dt = std::exp(u[i] * (std::log(dt_max) - std::log(dt_min)) + std::log(dt_min));
    dt = std::max(dt, dt_floor);
    out[i] = dt + std::log(-std::expm1(-dt));
  }
  return to_dtype(from_vector(out, {n}), dtype);
}

Tensor A_log_init(int64_t n, Generator& gen, double lo, double hi, DType dtype) {
  const std::vector<double> u = uniform({n}, lo, hi, gen, DType::f64).to_vector<double>();
  std::vector<double> out(static_cast<size_t>(n));
  for (size_t i = 0; i < out.size(); ++i) out[i] = std::log(std::max(u[i], 1e-4));
  return to_dtype(from_vector(out, {n}), dtype);
}

}  // namespace lnx::core
