// fixed_decay's recurrent form: a token loop per (sequence, head). The forward keeps every
// state S_t for the backward (a toy: memory T·K·V per head):
//   dq_t = scale·S_t do_t;  dS_t += scale·q_t do_tᵀ;  dk_t = dS_t v_t;  dv_t = dS_tᵀ k_t;
//   dS_{t−1} = γ dS_t;  dh0 = dS_0.
#include <cmath>

#include "kernels/toy_mechanism/fixed_decay.h"
#include "kernels/toy_mechanism/fixed_decay_internal.h"

namespace lnx::toy {

using namespace kernels;

namespace {

struct Recurrent {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    const SequenceLayout& L = a.L;
    const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
    const T gamma = static_cast<T>(a.options_as<FixedDecayOptions>().decay), scale = static_cast<T>(a.scale);
    const T *q = a.ptr<T>("q"), *k = a.ptr<T>("k"), *v = a.ptr<T>("v"), *h0 = a.ptr<T>("initial_state");
    Tensor o = zeros({L.B, L.T, H, V}, a.dtype), fin = Tensor::empty({L.N, H, K, V}, a.dtype);
    Tensor states = Tensor::empty({L.B * L.T, H, K, V}, a.dtype);  // S_t after every token
    T *op = o.data<T>(), *st = states.data<T>();
    for (int64_t n = 0; n < L.N; ++n)
      for (int64_t h = 0; h < H; ++h) {
        T* S = fin.data<T>() + (n * H + h) * KV;
        for (int64_t x = 0; x < KV; ++x) S[x] = h0 ? h0[(n * H + h) * KV + x] : T(0);
        for (int64_t r = L.offsets[n]; r < L.offsets[n + 1]; ++r) {
          const int64_t row = r * H + h;
          for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < V; ++j) {
              T& s = S[i * V + j];
              s = gamma * s + k[row * K + i] * v[row * V + j];
              op[row * V + j] += scale * q[row * K + i] * s;
            }
          std::copy(S, S + KV, st + row * KV);
        }
      }
    if (saved) saved->insert("states", states);
    return {o, fin};
  }

  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
    const SequenceLayout& L = a.L;
    const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
    const T gamma = static_cast<T>(a.options_as<FixedDecayOptions>().decay), scale = static_cast<T>(a.scale);
    const T *q = a.ptr<T>("q"), *k = a.ptr<T>("k"), *v = a.ptr<T>("v"), *st = saved.at("states").data<T>();
    const T *dO = d_o.data<T>(), *dF = d_final.defined() ? d_final.data<T>() : nullptr;
    TensorDict g;
    for (const char* name : {"q", "k", "v", "initial_state"})
      if (a.has(name)) g.insert(name, zeros(a[name].shape(), a.dtype));
    T *dq = g.at("q").data<T>(), *dk = g.at("k").data<T>(), *dv = g.at("v").data<T>();
    std::vector<T> dS(static_cast<size_t>(KV));
    for (int64_t n = 0; n < L.N; ++n)
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t x = 0; x < KV; ++x) dS[x] = dF ? dF[(n * H + h) * KV + x] : T(0);
        for (int64_t r = L.offsets[n + 1] - 1; r >= L.offsets[n]; --r) {
          const int64_t row = r * H + h;
          const T* S = st + row * KV;
          for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < V; ++j) {
              dq[row * K + i] += scale * S[i * V + j] * dO[row * V + j];
              T& ds = dS[i * V + j];
              ds += scale * q[row * K + i] * dO[row * V + j];
              dk[row * K + i] += ds * v[row * V + j];
              dv[row * V + j] += ds * k[row * K + i];
            }
          for (T& ds : dS) ds *= gamma;
        }
        if (a.has("initial_state")) std::copy(dS.begin(), dS.end(), g.at("initial_state").data<T>() + (n * H + h) * KV);
      }
    return g;
  }
};

}  // namespace

std::shared_ptr<const Primitive> fixed_decay_recurrent() {
  static const auto p = std::make_shared<const Primitive>(
      make_primitive<Recurrent>("toy_fixed_decay_recurrent", fixed_decay_inputs(), false));
  return p;
}

}  // namespace lnx::toy
