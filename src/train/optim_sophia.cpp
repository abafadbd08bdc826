// Sophia-G (Liu et al., "Sophia: A Scalable Stochastic Second-order Optimizer", Algorithm 3
// with the Gauss–Newton–Bartlett estimator). Per element, lr the scheduled rate, γ = rho:
//   p ← p · (1 − lr · wd)                               (matrices)
//   m ← β1 m + (1 − β1) g                               (no bias correction, as the paper)
//   p ← p − lr · clip(m / max(γ · h, eps), 1)            (clip to [−1, 1] element-wise)
// and every k steps, from the gradient ĝ of the mean loss on B labels sampled from the model:
//   h ← β2 h + (1 − β2) · B · ĝ ⊙ ĝ
// The reference code (Liuhong99/Sophia, sophia.py) keeps B out of h and divides by
// ρ · bs · h + 1e-15 instead, bs the step's token count; the two agree when B is fixed, and
// the floor (the paper's max with eps here, 1e-15 added there) only matters where γ·h < eps.
// Schedule of estimates: wants_hessian(step) is true when step % k == 0, so the first
// estimate precedes the first update (the reference updates h after the steps k−1, 2k−1, …,
// so its first k updates run with h = 0, i.e. as sign-momentum steps; the steady state is
// the same).
#include <cmath>

#include "train/optim_internal.h"

namespace lnx::train::detail {
namespace {

const std::vector<std::string> kSophiaSlots = {"exp_avg", "hessian"};

class Sophia final : public Optimizer {
 public:
  Sophia(const OptimizerConfig& config, const TensorDict& params)
      : Optimizer("sophia"), config_(config), tracked_(track(params.items(), 2)) {}

  void step(double lr_scale) override {
    ++steps_;
    const double lr = config_.lr * lr_scale, b1 = config_.beta1;
    const double gamma = config_.rho, eps = config_.eps;
    for (auto& t : tracked_) {
      const Tensor g = grad_of(t.param);
      if (!g.defined()) continue;
      apply_weight_decay(t, lr, config_.weight_decay);
      dispatch_float(t.param.dtype(), "sophia", [&]<typename T>() {
        T* w = t.param.data<T>();
        T* m = t.buffers[0].data<T>();
        const T* h = t.buffers[1].data<T>();
        const T* gd = g.data<T>();
        const int64_t n = t.param.numel();
        for (int64_t i = 0; i < n; ++i) {
          const double mi = b1 * m[i] + (1.0 - b1) * gd[i];
          m[i] = static_cast<T>(mi);
          const double ratio = std::clamp(mi / std::max(gamma * h[i], eps), -1.0, 1.0);
          w[i] = static_cast<T>(w[i] - lr * ratio);
        }
      });
    }
  }

  bool wants_hessian(int64_t step) const override { return step % config_.hessian_interval == 0; }

  void update_hessian(const TensorDict& sampled_grads, int64_t tokens) override {
    LNX_CHECK(tokens >= 1, ValueError, "[sophia] update_hessian: tokens must be ≥ 1, got {}", tokens);
    std::vector<std::string> problems;
    for (const auto& t : tracked_) {
      if (!sampled_grads.contains(t.name)) {
        problems.push_back(fmt::format("missing '{}'", t.name));
        continue;
      }
      const Tensor& g = sampled_grads.at(t.name);
      if (g.defined() && (g.dtype() != t.param.dtype() || g.shape() != t.param.shape()))
        problems.push_back(fmt::format("'{}' is {} {} but the parameter is {} {}", t.name, dtype_name(g.dtype()),
                                       shape_str(g.shape()), dtype_name(t.param.dtype()), shape_str(t.param.shape())));
    }
    LNX_CHECK(problems.empty(), ValueError, "[sophia] update_hessian: sampled gradients do not fit: {}",
              fmt::join(problems, "; "));
    const double b2 = config_.beta2, batch = static_cast<double>(tokens);
    for (auto& t : tracked_) {
      const Tensor g = sampled_grads.at(t.name).defined() ? sampled_grads.at(t.name).contiguous() : Tensor();
      if (!g.defined()) continue;  // no path from the loss: no curvature information this time
      dispatch_float(t.param.dtype(), "sophia", [&]<typename T>() {
        T* h = t.buffers[1].data<T>();
        const T* gd = g.data<T>();
        const int64_t n = t.param.numel();
        for (int64_t i = 0; i < n; ++i) {
          const double gi = gd[i];
          h[i] = static_cast<T>(b2 * h[i] + (1.0 - b2) * batch * gi * gi);
        }
      });
    }
  }

  TensorDict state() const override { return counted_buffers_state(steps_, tracked_, kSophiaSlots); }
  void load_state(const TensorDict& s) override { steps_ = load_counted_buffers(s, "sophia", tracked_, kSophiaSlots); }

  int64_t steps_taken() const override { return steps_; }

 private:
  OptimizerConfig config_;
  std::vector<Tracked> tracked_;  // buffers: exp_avg, hessian
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_sophia(const OptimizerConfig& config, const TensorDict& params) {
  return std::make_unique<Sophia>(config, params);
}

}  // namespace lnx::train::detail
