// Internal to simple_gla: its input specs, its fused primitives and what their kernels share.
#pragma once

#include <vector>

#include "kernels/primitive.h"

namespace lnx::kernels::simple_gla_detail {

// q, k, v, g, g_gamma, initial_state; with value_maps, also v_scale and skip.
std::vector<InputSpec> input_specs(bool value_maps);

const Primitive& recurrent_primitive();  // takes no value maps (the form composes them)
const Primitive& chunk_primitive();      // applies the value maps in its own loops

// The effective log gate of token row r, head h: g and g_gamma add; 0 without either.
template <typename T> struct Gates {
  const T *g, *gamma;
  int64_t H;
  explicit Gates(const KernelArgs& a) : g(a.ptr<T>("g")), gamma(a.ptr<T>("g_gamma")), H(a.L.H) {}
  bool any() const { return g || gamma; }
  double operator()(int64_t r, int64_t h) const {
    double x = 0;
    if (g) x += static_cast<double>(g[r * H + h]);
    if (gamma) x += static_cast<double>(gamma[h]);
    return x;
  }
};

// The gate gradients from dgt [rows, H] (f64; the gradient of each token's log gate): dg
// [B,T,H] when g is an input, and dg_gamma[h] = Σ_t dgt[t,h] when g_gamma is.
void store_gate_grads(const KernelArgs& a, const std::vector<double>& dgt, TensorDict& grads);

}  // namespace lnx::kernels::simple_gla_detail
