// Global-norm gradient clipping (see clip.h).
#include "train/clip.h"

#include <cmath>

#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace lnx::train {

double grad_norm(const TensorDict& params) { return std::sqrt(grad_norm_squared(params)); }

double grad_norm_squared(const TensorDict& params) {
  double sum_sq = 0.0;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor c = g.detach().contiguous();
    dispatch_float(c.dtype(), "clip_grad_norm", [&]<typename T>() {
      const T* d = c.data<T>();
      for (int64_t i = 0; i < c.numel(); ++i) sum_sq += static_cast<double>(d[i]) * static_cast<double>(d[i]);
    });
  }
  return sum_sq;
}

double clip_grad_norm(const TensorDict& params, double max_norm) {
  LNX_CHECK(max_norm > 0.0, ValueError, "[clip_grad_norm] max_norm must be > 0, got {}", max_norm);
  const double norm = grad_norm(params);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  scale_grads(params, max_norm / norm);
  return norm;
}

void scale_grads(const TensorDict& params, double factor) {
  NoGradGuard no_grad;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (g.defined()) p.set_grad(g.detach() * factor);
  }
}

}  // namespace lnx::train
