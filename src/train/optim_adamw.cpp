// AdamW (Loshchilov & Hutter): Adam moments with bias correction and decoupled weight decay,
// the decay on matrices only. Per element, with t the 1-based step and lr the scheduled rate:
//   p ← p · (1 − lr · wd)                         (matrices)
//   m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²
//   p ← p − lr · (m / (1 − β1ᵗ)) / (sqrt(v / (1 − β2ᵗ)) + eps)
// (PyTorch's torch.optim.AdamW form: eps is added after the bias-corrected square root.)
#include <cmath>

#include "train/optim_internal.h"

namespace lnx::train::detail {

namespace {
const std::vector<std::string> kAdamSlots = {"exp_avg", "exp_avg_sq"};
}

AdamWCore::AdamWCore(const OptimizerConfig& config, std::vector<Tracked> tracked, std::string prefix)
    : config_(config), tracked_(std::move(tracked)), prefix_(std::move(prefix)) {}

void AdamWCore::step(double lr) {
  ++steps_;
  const double b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  const double correction1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double correction2 = 1.0 - std::pow(b2, static_cast<double>(steps_));
  for (auto& t : tracked_) {
    const Tensor g = grad_of(t.param);
    if (!g.defined()) continue;
    apply_weight_decay(t, lr, config_.weight_decay);
    dispatch_float(t.param.dtype(), "adamw", [&]<typename T>() {
      T* w = t.param.data<T>();
      T* m = t.buffers[0].data<T>();
      T* v = t.buffers[1].data<T>();
      const T* gd = g.data<T>();
      const int64_t n = t.param.numel();
      for (int64_t i = 0; i < n; ++i) {
        const double gi = gd[i];
        const double mi = b1 * m[i] + (1.0 - b1) * gi;
        const double vi = b2 * v[i] + (1.0 - b2) * gi * gi;
        m[i] = static_cast<T>(mi);
        v[i] = static_cast<T>(vi);
        const double update = (mi / correction1) / (std::sqrt(vi / correction2) + eps);
        w[i] = static_cast<T>(w[i] - lr * update);
      }
    });
  }
}

void AdamWCore::save(TensorDict& out) const {
  out.insert(prefix_ + "step", step_counter(steps_));
  save_buffers(tracked_, kAdamSlots, prefix_, out);
}

void AdamWCore::expect(StateReader& reader) const {
  reader.expect_counter(prefix_ + "step");
  expect_buffers(tracked_, kAdamSlots, prefix_, reader);
}

void AdamWCore::load(const StateReader& reader) {
  steps_ = reader.counter(prefix_ + "step");
  load_buffers(tracked_, kAdamSlots, prefix_, reader);
}

namespace {

class AdamW final : public Optimizer {
 public:
  AdamW(const OptimizerConfig& config, const TensorDict& params)
      : Optimizer("adamw"), lr_(config.lr), core_(config, track(params.items(), 2), "") {}

  void step(double lr_scale) override { core_.step(lr_ * lr_scale); }
  TensorDict state() const override {
    TensorDict out;
    core_.save(out);
    return out;
  }
  void load_state(const TensorDict& s) override {
    StateReader reader(s, "adamw");
    core_.expect(reader);
    reader.finish();
    core_.load(reader);
  }
  int64_t steps_taken() const override { return core_.steps(); }

 private:
  double lr_;
  AdamWCore core_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adamw(const OptimizerConfig& config, const TensorDict& params) {
  return std::make_unique<AdamW>(config, params);
}

}  // namespace lnx::train::detail
