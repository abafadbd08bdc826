// Helpers shared by the mechanism tests.
#pragma once

#include <cmath>
#include <string>

#include "kernels/mechanism.h"

namespace lnx::kernels {

struct GradRun {
  Tensor o, final_state;
  TensorDict grads;  // of every floating input (zeros where no gradient reached it)
};

// Runs `name` in `form` on fresh leaves made from inputs (floating inputs converted to dtype
// and marked for gradients; others passed as they are) and backpropagates
// L = Σ o ⊙ d_o + Σ final_state ⊙ d_final (the second term only when d_final is given and
// the mechanism returned a final state).
inline GradRun run_with_grads(const std::string& name, Form form, const TensorDict& inputs, DType dtype,
                              const MechanismOptions& opt, const Tensor& d_o, const Tensor& d_final = Tensor()) {
  TensorDict leaves;
  for (const auto& [n, t] : inputs) {
    Tensor leaf = is_floating(t.dtype()) ? t.detach().to(dtype).clone() : t;
    if (is_floating(leaf.dtype())) leaf.set_requires_grad();
    leaves.insert(n, leaf);
  }
  MechanismOutputs out = run(name, form, leaves, opt);
  Tensor loss = sum(mul(out.o, d_o.to(out.o.dtype())));
  if (d_final.defined() && out.final_state.defined())
    loss = add(loss, sum(mul(out.final_state, d_final.to(out.o.dtype()))));
  loss.backward();
  GradRun r{out.o.detach(), out.final_state.defined() ? out.final_state.detach() : Tensor(), {}};
  for (const auto& [n, t] : leaves)
    if (is_floating(t.dtype())) r.grads.insert(n, t.grad().defined() ? t.grad() : zeros_like(t));
  return r;
}

inline bool all_finite(const Tensor& t) {
  for (double x : t.to_vector<double>())
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace lnx::kernels
