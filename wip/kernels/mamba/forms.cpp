// The wiring the fast forms share: dt + dt_bias and A = −exp(A_log)ᵀ as tensor ops; then one
// recorded node over (x, dt + dt_bias, A, B, C, initial_state) whose forward is the softplus
// (vectorised here) and the core scan (recurrent.cpp or chunk.cpp), and whose vjp is the core's
// hand-written one followed by dpre = dΔ ⊙ σ(pre); then the D skip as tensor ops.
#include <cmath>

#include "kernels/mamba/mamba.h"
#include "kernels/mamba/scan.h"
#include "tensor/autograd.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels::mamba_detail {

namespace {

// softplus(v) = max(v, 0) + log1p(u) with u = e^{−|v|} ∈ (0, 1], and log1p(u) = 2·atanh(s)
// with s = u / (2 + u) ∈ (0, 1/3] (no cancellation for small u), by its series to s¹⁵
// (remainder below 2·(1/3)¹⁷/17, 1e-9 relative). f64 uses libm.
inline float softplus_f32(float v) {
  const float u = exp_f32(-std::abs(v));
  const float s = u / (2.0f + u), s2 = s * s;
  float p = 1.0f / 15.0f;
  p = std::fma(p, s2, 1.0f / 13.0f);
  p = std::fma(p, s2, 1.0f / 11.0f);
  p = std::fma(p, s2, 1.0f / 9.0f);
  p = std::fma(p, s2, 1.0f / 7.0f);
  p = std::fma(p, s2, 1.0f / 5.0f);
  p = std::fma(p, s2, 1.0f / 3.0f);
  p = std::fma(p, s2, 1.0f);
  return std::max(v, 0.0f) + 2.0f * s * p;
}
inline double softplus_f64(double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v))); }
inline float softplus_fast(float v) { return softplus_f32(v); }
inline double softplus_fast(double v) { return softplus_f64(v); }

// Δ = softplus(pre), elementwise.
template <typename T> Tensor softplus_of(const Tensor& pre) {
  Tensor out = Tensor::empty(pre.shape(), pre.dtype());
  const T* p = pre.data<T>();
  T* o = out.data<T>();
  parallel_for(pre.numel(), 1 << 14, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) o[i] = softplus_fast(p[i]);
  });
  return out;
}

// dpre = dΔ ⊙ σ(pre), in place in dΔ.
template <typename T> void times_sigmoid(Tensor& d, const Tensor& pre) {
  const T* p = pre.data<T>();
  T* g = d.data<T>();
  parallel_for(pre.numel(), 1 << 14, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) g[i] *= T(1) / (T(1) + fast_exp(-p[i]));
  });
}

}  // namespace

MechanismOutputs run_fast(const std::string& op, const TensorDict& in, const MechanismOptions& opt,
                          const CoreFn& fn) {
  const Inputs a = check_inputs(op, in, opt);
  const int64_t H = a.L.H, V = a.L.V;
  Tensor pre = a.dt_bias.defined() ? add(a.dt, reshape(a.dt_bias, {1, 1, H, V})) : a.dt;
  Tensor A = contiguous(transpose(neg(exp(a.A_log)), 1, 2));  // [H, K, V]
  const TensorList inputs{a.x, pre, A, a.B, a.C, a.h0};
  const bool grad = needs_grad(inputs);
  const DType dtype = a.x.dtype();
  Core c;
  c.L = a.L;
  c.x = a.x.detach().contiguous();
  const Tensor pre_c = pre.detach().contiguous();
  c.delta = dispatch_float(dtype, op, [&]<typename T>() { return softplus_of<T>(pre_c); });
  c.A = A.detach().contiguous();
  c.B = a.B.detach().contiguous();
  c.C = a.C.detach().contiguous();
  if (a.h0.defined()) c.h0 = a.h0.detach().contiguous();
  c.scale = a.scale;
  c.chunk_size = opt.chunk_size;
  CoreResult r = fn(c, grad);
  MechanismOutputs out;
  out.o = std::move(r.y);
  if (opt.output_final_state) out.final_state = std::move(r.final_state);
  if (grad) {
    const bool with_final = opt.output_final_state;
    std::vector<Tensor*> outputs{&out.o};
    if (with_final) outputs.push_back(&out.final_state);
    record(op, inputs, outputs,
           [backward = std::move(r.backward), with_final, pre_c, dtype](const VjpContext& ctx) -> TensorList {
      Tensor d_o = ctx.grad(0).contiguous();
      Tensor d_final = with_final ? ctx.grad(1).contiguous() : Tensor();
      CoreGrads g = backward(d_o, d_final);
      dispatch_float(dtype, "mamba_softplus_backward", [&]<typename T>() { times_sigmoid<T>(g.ddelta, pre_c); });
      return {g.dx, g.ddelta, g.dA, g.dB, g.dC, g.dh0};
    });
  }
  if (a.D.defined()) out.o = add(out.o, mul(a.x, reshape(a.D, {1, 1, H, V})));
  return out;
}

}  // namespace lnx::kernels::mamba_detail
