// SGD with momentum (PyTorch's torch.optim.SGD convention). Per element, μ the momentum and
// lr the scheduled rate:
//   p ← p · (1 − lr · wd)                  (matrices; decoupled like the other optimizers)
//   b ← μ b + g                            (b starts at 0, so the first b is g)
//   p ← p − lr · (g + μ b)   (Nesterov)    or   p ← p − lr · b
// μ = 0 gives plain SGD.
#include "train/optim_internal.h"

namespace lnx::train::detail {
namespace {

const std::vector<std::string> kSgdSlots = {"momentum"};

class Sgd final : public Optimizer {
 public:
  Sgd(const OptimizerConfig& config, const TensorDict& params)
      : Optimizer("sgd"), config_(config), tracked_(track(params.items(), 1)) {}

  void step(double lr_scale) override {
    ++steps_;
    const double lr = config_.lr * lr_scale, mu = config_.momentum;
    for (auto& t : tracked_) {
      const Tensor g = grad_of(t.param);
      if (!g.defined()) continue;
      apply_weight_decay(t, lr, config_.weight_decay);
      dispatch_float(t.param.dtype(), "sgd", [&]<typename T>() {
        T* w = t.param.data<T>();
        T* b = t.buffers[0].data<T>();
        const T* gd = g.data<T>();
        const int64_t n = t.param.numel();
        for (int64_t i = 0; i < n; ++i) {
          const double bi = mu * b[i] + gd[i];
          b[i] = static_cast<T>(bi);
          const double update = config_.nesterov ? gd[i] + mu * bi : bi;
          w[i] = static_cast<T>(w[i] - lr * update);
        }
      });
    }
  }

  TensorDict state() const override { return counted_buffers_state(steps_, tracked_, kSgdSlots); }
  void load_state(const TensorDict& s) override { steps_ = load_counted_buffers(s, "sgd", tracked_, kSgdSlots); }

  int64_t steps_taken() const override { return steps_; }

 private:
  OptimizerConfig config_;
  std::vector<Tracked> tracked_;  // buffer: momentum
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(const OptimizerConfig& config, const TensorDict& params) {
  return std::make_unique<Sgd>(config, params);
}

}  // namespace lnx::train::detail
