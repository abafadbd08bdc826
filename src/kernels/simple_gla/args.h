// Internal to simple_gla's fast forms: the checked inputs, raw pointers into them, and the
// autodiff wiring the recurrent and chunk forms share.
#pragma once

#include <string>
#include <vector>

#include "kernels/common/layout.h"

namespace lnx::kernels::simple_gla_detail {

// Inputs after validation, detached and contiguous (the fast forms work on raw pointers).
struct Args {
  SequenceLayout L;
  Tensor q, k, v, g, gamma, h0;  // g, gamma, h0 may be undefined
  // Internal value maps of the chunk form (mamba2's Δ and D, fused instead of composed from
  // tensor ops; not registry inputs): the recurrence uses v_scale_t·v_t as its value, and the
  // output gains skip_h·v_t. Both may be undefined.
  Tensor v_scale;  // [B,T,H]
  Tensor skip;     // [H]
  double scale = 1.0;
  bool output_final_state = true;
};

// Validates the inputs of simple_gla (q, k, v, optional g [B,T,H], g_gamma [H],
// initial_state [N,H,K,V]; with value_maps, also v_scale [B,T,H] and skip [H]) and returns
// them detached and contiguous. Without value_maps, v_scale or skip is an error.
Args parse_args(const std::string& op, const TensorDict& inputs, const MechanismOptions& options,
                bool value_maps = false);

// Pointers into Args for one dtype. Token row r, head h of q starts at q + (r·H + h)·K.
template <typename T> struct Ptrs {
  const T *q, *k, *v, *g, *gamma, *h0, *v_scale, *skip;
  explicit Ptrs(const Args& a)
      : q(a.q.data<T>()), k(a.k.data<T>()), v(a.v.data<T>()),
        g(a.g.defined() ? a.g.data<T>() : nullptr),
        gamma(a.gamma.defined() ? a.gamma.data<T>() : nullptr),
        h0(a.h0.defined() ? a.h0.data<T>() : nullptr),
        v_scale(a.v_scale.defined() ? a.v_scale.data<T>() : nullptr),
        skip(a.skip.defined() ? a.skip.data<T>() : nullptr) {}
  // The effective log gate of token row r, head h (g and g_gamma add; 0 without either).
  double gate(int64_t r, int64_t h, int64_t H) const {
    double x = 0;
    if (g) x += static_cast<double>(g[r * H + h]);
    if (gamma) x += static_cast<double>(gamma[h]);
    return x;
  }
};

// Gradients of the inputs (each undefined when not wanted), and the incoming gradients.
struct Grads {
  Tensor dq, dk, dv, dg, dgamma, dh0, dv_scale, dskip;
};

// The forward of a fast form: o [B,T,H,V] and the final state [N,H,K,V] (always computed).
// Whatever the backward needs beyond Args is kept by the form in its closure.
using Forward = std::function<std::pair<Tensor, Tensor>(const Args&)>;
// The backward: given do and dfinal (dfinal may be undefined = zero).
using Backward = std::function<Grads(const Args&, const Tensor& d_o, const Tensor& d_final)>;

// Whether any differentiable input of `in` needs a gradient (a backward will follow).
bool wants_grad(const TensorDict& inputs);

// Runs forward on the inputs of `in` and, when any of them needs a gradient, records a node
// named op whose vjp calls backward. Returns the outputs as the mechanism's form does.
MechanismOutputs run_and_record(const std::string& op, const TensorDict& in, const Args& args,
                                const std::pair<Tensor, Tensor>& outputs, Backward backward);

// Stores the gate gradients from dgt [rows, H] (f64; the gradient of each token's log gate):
// dg [B,T,H] when g is an input, and dgamma[h] = Σ_t dgt[t,h] when g_gamma is.
void store_gate_grads(const Args& a, const std::vector<double>& dgt, Grads& grads);

}  // namespace lnx::kernels::simple_gla_detail
