// Muon (Keller Jordan, github.com/KellerJordan/Muon): SGD momentum whose update for each
// hidden matrix W [R, C] is replaced by an approximately orthogonal matrix of the same
// row/column spaces (U Vᵀ of its SVD, approximated by a quintic Newton–Schulz iteration).
// Per matrix, with β the momentum and lr = muon_lr × lr_scale:
//   M ← β M + (1 − β) G                      (the reference's lerp form, M starts at 0)
//   U = (1 − β) G + β M  (Nesterov)  or  M
//   O = NewtonSchulz5(U),  scaled by sqrt(max(1, R / C))
//   W ← W · (1 − lr · wd) − lr · O
// The shape factor sqrt(max(1, R/C)) is the reference's current form (muon.py, muon_update):
// it makes tall matrices' per-element update as large as square ones'. Embeddings, the LM head
// and every gain run through an internal AdamW with the config's lr (see optim.h).
#include <cmath>

#include "tensor/autograd.h"
#include "tensor/ops.h"
#include "train/optim_internal.h"

namespace lnx::train {

Tensor newton_schulz(const Tensor& g, int64_t steps) {
  LNX_CHECK(g.defined() && g.dim() == 2, ShapeError, "[newton_schulz] expected a matrix [R, C], got {}",
            g.defined() ? shape_str(g.shape()) : std::string("an undefined tensor"));
  LNX_CHECK(is_floating(g.dtype()), DTypeError, "[newton_schulz] expected f32 or f64, got {}", dtype_name(g.dtype()));
  LNX_CHECK(steps >= 0, ValueError, "[newton_schulz] steps must be ≥ 0, got {}", steps);
  constexpr double a = 3.4445, b = -4.7750, c = 2.0315;
  NoGradGuard no_grad;
  Tensor x = g.detach();
  // Iterate on the wide orientation so the Gram matrix X Xᵀ is the smaller one.
  const bool tall = x.size(0) > x.size(1);
  if (tall) x = transpose(x, 0, 1);
  // The Frobenius norm bounds the spectral norm, so every singular value starts in [0, 1].
  const double frobenius = std::sqrt(sum(square(x)).item());
  x = contiguous(x * (1.0 / (frobenius + 1e-7)));
  for (int64_t i = 0; i < steps; ++i) {
    const Tensor gram = matmul(x, transpose(x, 0, 1));
    const Tensor poly = gram * b + matmul(gram, gram) * c;
    x = x * a + matmul(poly, x);
  }
  if (tall) x = transpose(x, 0, 1);
  return contiguous(x);
}

namespace detail {
namespace {

const std::vector<std::string> kMuonSlots = {"momentum"};

class Muon final : public Optimizer {
 public:
  Muon(const OptimizerConfig& config, const TensorDict& params)
      : Optimizer("muon"),
        config_(config),
        matrices_(track(split(params, true), 1)),
        others_(config, track(split(params, false), 2), "adamw.") {}

  void step(double lr_scale) override {
    ++steps_;
    const double lr = config_.muon_lr * lr_scale;
    const double beta = config_.momentum;
    for (auto& t : matrices_) {
      const Tensor g = grad_of(t.param);
      if (!g.defined() || t.param.numel() == 0) continue;
      const int64_t rows = t.param.size(0), cols = t.param.numel() / rows;
      Tensor update = Tensor::empty({rows, cols}, t.param.dtype());
      dispatch_float(t.param.dtype(), "muon", [&]<typename T>() {
        T* m = t.buffers[0].data<T>();
        const T* gd = g.data<T>();
        T* u = update.data<T>();
        for (int64_t i = 0; i < rows * cols; ++i) {
          const double mi = beta * m[i] + (1.0 - beta) * gd[i];
          m[i] = static_cast<T>(mi);
          u[i] = static_cast<T>(config_.nesterov ? (1.0 - beta) * gd[i] + beta * mi : mi);
        }
      });
      const Tensor ortho = newton_schulz(update, config_.ns_steps);
      const double scale = std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols)));
      apply_weight_decay(t, lr, config_.weight_decay);
      dispatch_float(t.param.dtype(), "muon", [&]<typename T>() {
        T* w = t.param.data<T>();
        const T* o = ortho.data<T>();
        for (int64_t i = 0; i < rows * cols; ++i) w[i] = static_cast<T>(w[i] - lr * scale * o[i]);
      });
    }
    others_.step(config_.lr * lr_scale);
  }

  TensorDict state() const override {
    TensorDict out;
    out.insert("step", step_counter(steps_));
    save_buffers(matrices_, kMuonSlots, "", out);
    others_.save(out);
    return out;
  }

  void load_state(const TensorDict& s) override {
    StateReader reader(s, "muon");
    reader.expect_counter("step");
    expect_buffers(matrices_, kMuonSlots, "", reader);
    others_.expect(reader);
    reader.finish();
    steps_ = reader.counter("step");
    load_buffers(matrices_, kMuonSlots, "", reader);
    others_.load(reader);
  }

  int64_t steps_taken() const override { return steps_; }

 private:
  static std::vector<std::pair<std::string, Tensor>> split(const TensorDict& params, bool muon_side) {
    std::vector<std::pair<std::string, Tensor>> out;
    for (const auto& [name, p] : params)
      if ((route_of(name, p) == ParamRoute::muon_matrix) == muon_side) out.emplace_back(name, p);
    return out;
  }

  OptimizerConfig config_;
  std::vector<Tracked> matrices_;  // buffer: momentum
  AdamWCore others_;
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<Optimizer> make_muon(const OptimizerConfig& config, const TensorDict& params) {
  return std::make_unique<Muon>(config, params);
}

}  // namespace detail
}  // namespace lnx::train
