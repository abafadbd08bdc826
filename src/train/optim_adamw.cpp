// AdamW (Loshchilov & Hutter): Adam moments with bias correction and decoupled weight decay,
// the decay on matrices only. Per element, with t the 1-based step and lr the scheduled rate:
//   p ← p · (1 − lr · wd)                         (matrices)
//   m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²
//   p ← p − lr · (m / (1 − β1ᵗ)) / (sqrt(v / (1 − β2ᵗ)) + eps)
// (PyTorch's torch.optim.AdamW form: eps is added after the bias-corrected square root.)
#include <cmath>

#include "tensor/cpu/parallel.h"
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
    // Weight decay and the Adam update in one pass over the parameter (p, g, m and v read once),
    // split over the threads.
    const double decay = t.decay && lr != 0.0 ? 1.0 - lr * config_.weight_decay : 1.0;
    dispatch_float(t.param.dtype(), "adamw", [&]<typename T>() {
      T* w = t.param.data<T>();
      T* m = t.buffers[0].data<T>();
      T* v = t.buffers[1].data<T>();
      const T* gd = g.data<T>();
      // In T's own precision (f32 math for f32 parameters, as PyTorch's): 16 lanes a vector.
      const T tb1 = static_cast<T>(b1), tb2 = static_cast<T>(b2), tlr = static_cast<T>(lr);
      const T inv_c1 = static_cast<T>(1.0 / correction1), inv_c2 = static_cast<T>(1.0 / correction2);
      const T teps = static_cast<T>(eps), tdecay = static_cast<T>(decay);
      parallel_for(t.param.numel(), kOptimizerGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const T gi = gd[i];
          const T mi = tb1 * m[i] + (T(1) - tb1) * gi;
          const T vi = tb2 * v[i] + (T(1) - tb2) * gi * gi;
          m[i] = mi;
          v[i] = vi;
          const T update = (mi * inv_c1) / (std::sqrt(vi * inv_c2) + teps);
          w[i] = w[i] * tdecay - tlr * update;
        }
      });
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
