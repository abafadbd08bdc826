// Global-norm gradient clipping (see clip.h).
#include "train/clip.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/autograd.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"

namespace lnx::train {

double grad_norm(const TensorDict& params) { return std::sqrt(grad_norm_squared(params)); }

double grad_norm_squared(const TensorDict& params) {
  // Sums of squares over fixed blocks of each gradient, added in block order: the same total
  // whatever the thread count.
  constexpr int64_t kBlock = 8192;
  double sum_sq = 0.0;
  std::vector<double> partial;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor c = g.detach().contiguous();
    const int64_t n = c.numel(), blocks = (n + kBlock - 1) / kBlock;
    partial.assign(static_cast<size_t>(blocks), 0.0);
    dispatch_float(c.dtype(), "clip_grad_norm", [&]<typename T>() {
      const T* d = c.data<T>();
      parallel_for(blocks, 2, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // eight running sums: one vector register
          const int64_t begin = b * kBlock, end = std::min(n, begin + kBlock);
          int64_t i = begin;
          for (; i + 8 <= end; i += 8)
            for (int j = 0; j < 8; ++j) lanes[j] += static_cast<double>(d[i + j]) * static_cast<double>(d[i + j]);
          for (; i < end; ++i) lanes[0] += static_cast<double>(d[i]) * static_cast<double>(d[i]);
          double s = 0.0;
          for (double l : lanes) s += l;
          partial[static_cast<size_t>(b)] = s;
        }
      });
    });
    for (double s : partial) sum_sq += s;
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
