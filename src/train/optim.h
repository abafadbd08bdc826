// Optimizers: AdamW, Muon (with an internal AdamW), Sophia-G and SGD with momentum.
//
// The parameters are a model's autodiff leaves (TensorDict from Module::parameters(): each
// entry shares the model's TensorImpl). step() reads each leaf's grad() and writes the update
// into the leaf's own storage (p.data<T>()), so the model sees it and no autodiff history is
// recorded. f32 and f64 parameters are supported; moment buffers have the parameter's dtype,
// the per-element arithmetic runs in double. A parameter whose grad() is undefined is left
// untouched that step (its buffers too; the optimizer's one step counter, which AdamW's bias
// correction reads, still advances). Sizes: a matrix parameter is [R rows, C cols].
//
// Which parameter goes where (decided by name and dim, see route_of):
//   * "gain" parameters: dim < 2 (norm weights, biases, D, dt_bias, …) and, whatever their
//     dim, leaves whose last name component is A_log, dt_bias or D (Mamba-1's A_log is 2-D;
//     Mamba's reference exempts them from decay). No weight decay, never Muon.
//   * "matrix" parameters: every other parameter (dim ≥ 2). Decoupled weight decay
//     p ← p · (1 − lr · weight_decay) applies to these only, in every optimizer.
//   * Muon takes the matrices whose name contains none of "embeddings", "lm_head", "conv1d":
//     the hidden linear maps (a dim > 2 tensor would be viewed as [size(0), rest]). The
//     depthwise short-conv filters ("…conv1d.weight", [C, W]) are C independent W-tap filters,
//     not a map between two spaces, so orthogonalising across channels would couple unrelated
//     filters: they stay on AdamW (the reference's conv case is a full conv, a real map).
//     Embeddings, the head, the conv filters and all gains go to an internal AdamW with the
//     config's lr, betas, eps and weight decay (decay on the matrices among them only).
//
// State (state()/load_state()): one TensorDict holding copies of every buffer, named
// "<slot>/<parameter name>" (e.g. "exp_avg/blocks.0.mlp.w1.weight"), plus step counters as
// i64 [1] tensors. Slots: adamw exp_avg, exp_avg_sq; sophia exp_avg, hessian; sgd momentum;
// muon momentum (its matrices) plus "adamw.step", "adamw.exp_avg/…", "adamw.exp_avg_sq/…"
// (the rest). The counter is "step" everywhere. Loading checks the
// whole dict first and reports every missing, unexpected or mismatched entry in one
// ValueError; nothing is changed when it throws.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tensor/tensor.h"
#include "tensor/tensor_dict.h"
#include "train/clip.h"  // clip_grad_norm belongs to the same optimizer-step API

namespace lnx::train {

struct OptimizerConfig {
  std::string name = "adamw";  // adamw | muon | sophia | sgd
  double lr = 3e-3;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double momentum = 0.95;         // muon's momentum; sgd's momentum (0 = plain SGD)
  bool nesterov = true;           // muon and sgd
  int64_t ns_steps = 5;           // muon: Newton–Schulz iterations
  double muon_lr = 0.02;          // muon: lr of the matrices it orthogonalises (spectral-norm units)
  double rho = 0.04;              // sophia: γ of the paper (ρ of the reference code)
  int64_t hessian_interval = 10;  // sophia: k, steps between Hessian estimates

  // Calls v(name, field, help) for every field, in this order (config I/O walks it).
  template <class Visitor> void visit(Visitor&& v) {
    v("name", name, "optimizer: adamw, muon, sophia or sgd");
    v("lr", lr, "peak learning rate (the schedule scales it)");
    v("weight_decay", weight_decay, "decoupled weight decay, matrices only");
    v("beta1", beta1, "first-moment EMA coefficient (adamw, sophia)");
    v("beta2", beta2, "second-moment / Hessian EMA coefficient (adamw, sophia)");
    v("eps", eps, "denominator floor (adamw: added to sqrt(v); sophia: max with rho*h)");
    v("momentum", momentum, "momentum of muon and sgd");
    v("nesterov", nesterov, "Nesterov momentum (muon, sgd)");
    v("ns_steps", ns_steps, "muon: Newton-Schulz iterations");
    v("muon_lr", muon_lr, "muon: learning rate of the hidden matrices");
    v("rho", rho, "sophia: clipping scale gamma of the update m / max(rho*h, eps)");
    v("hessian_interval", hessian_interval, "sophia: steps between Hessian estimates");
  }
};

class Optimizer {
 public:
  explicit Optimizer(std::string name) : name_(std::move(name)) {}
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update from the current grads with lr = config lr × lr_scale (the schedule's factor;
  // Muon scales its muon_lr by the same factor).
  virtual void step(double lr_scale) = 0;
  // Copies of everything an exact resume needs (buffers and step counters).
  virtual TensorDict state() const = 0;
  // Restores state() output; ValueError listing every problem at once.
  virtual void load_state(const TensorDict& s) = 0;
  const std::string& name() const { return name_; }
  // Number of step() calls so far (restored by load_state).
  virtual int64_t steps_taken() const = 0;

  // Sophia-G only; the others return false / do nothing. wants_hessian(step): whether the
  // trainer should compute a Hessian estimate before the update of that (0-based) step.
  // update_hessian(sampled_grads, tokens): sampled_grads are the gradients of the MEAN
  // cross-entropy over `tokens` labels sampled from the model's own output distribution
  // (same names as the parameters).
  virtual bool wants_hessian(int64_t step) const;
  virtual void update_hessian(const TensorDict& sampled_grads, int64_t tokens);

 private:
  std::string name_;
};

// Checks the config (ValueError naming the field) and the parameters (floating, contiguous,
// defined; DTypeError / ValueError otherwise), then builds the named optimizer.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, const TensorDict& params);

// Where a parameter goes (see the banner).
enum class ParamRoute { muon_matrix, matrix, gain };
ParamRoute route_of(const std::string& name, const Tensor& param);
bool is_decayed(const std::string& name, const Tensor& param);  // route != gain

// Muon's orthogonaliser: the quintic Newton–Schulz iteration on G [R, C] (dim 2), in G's dtype.
// X = G / (‖G‖_F + 1e-7) (transposed first when R > C so X X^T is the small Gram matrix), then
// `steps` times: A = X Xᵀ, X ← a X + (b A + c A²) X with (a, b, c) = (3.4445, −4.7750, 2.0315).
// These coefficients trade exactness for speed: the singular values land in about
// [0.68, 1.13] on random matrices (the tests check [0.65, 1.2]) rather than at 1, which
// the reference finds harmless for training.
Tensor newton_schulz(const Tensor& g, int64_t steps);

}  // namespace lnx::train
