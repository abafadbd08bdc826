// fixed_decay's chunk form, in plain loops over the driver's chunk plan. Per chunk of L
// tokens (local i, j) with S0 the state before it:
//   o_i = scale·(γ^{i+1} S0ᵀ q_i + Σ_{j≤i} γ^{i−j} (q_i·k_j) v_j),
//   S_next = γ^L S0 + Σ_j γ^{L−1−j} k_j v_jᵀ.
// Backward, chunks in reverse with dS the gradient of the state after the chunk:
//   dq_i = scale·(γ^{i+1} S0 do_i + Σ_{j≤i} γ^{i−j} (do_i·v_j) k_j),
//   dk_j = scale·Σ_{i≥j} γ^{i−j} (do_i·v_j) q_i + γ^{L−1−j} dS v_j,
//   dv_j = scale·Σ_{i≥j} γ^{i−j} (q_i·k_j) do_i + γ^{L−1−j} dSᵀ k_j,
//   dS0 = γ^L dS + scale·Σ_i γ^{i+1} q_i do_iᵀ.
#include <cmath>

#include "kernels/toy_mechanism/fixed_decay.h"
#include "kernels/toy_mechanism/fixed_decay_internal.h"

namespace lnx::toy {

using namespace kernels;

namespace {

template <typename T> struct Rows {
  const T *q, *k, *v;
  int64_t H, K, V;
  const T* qr(int64_t r, int64_t h) const { return q + (r * H + h) * K; }
  const T* kr(int64_t r, int64_t h) const { return k + (r * H + h) * K; }
  const T* vr(int64_t r, int64_t h) const { return v + (r * H + h) * V; }
};

template <typename T> T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
  for (int64_t x = 0; x < n; ++x) s += a[x] * b[x];
  return s;
}

struct Chunk {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    const SequenceLayout& L = a.L;
    const ChunkPlan& plan = a.chunks();
    const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
    const T gamma = static_cast<T>(a.options_as<FixedDecayOptions>().decay), scale = static_cast<T>(a.scale);
    const Rows<T> x{a.ptr<T>("q"), a.ptr<T>("k"), a.ptr<T>("v"), H, K, V};
    const T* h0 = a.ptr<T>("initial_state");
    Tensor o = zeros({L.B, L.T, H, V}, a.dtype), fin = Tensor::empty({L.N, H, K, V}, a.dtype);
    Tensor before = Tensor::empty({plan.total(), H, K, V}, a.dtype);  // the state before every chunk
    T* op = o.data<T>();
    for (int64_t n = 0; n < L.N; ++n)
      for (int64_t h = 0; h < H; ++h) {
        T* S = fin.data<T>() + (n * H + h) * KV;
        for (int64_t e = 0; e < KV; ++e) S[e] = h0 ? h0[(n * H + h) * KV + e] : T(0);
        for (int64_t c = 0; c < plan.count(n); ++c) {
          const auto& ch = plan.chunk(n, c);
          std::copy(S, S + KV, before.data<T>() + (plan.index(n, c) * H + h) * KV);
          for (int64_t i = 0; i < ch.len; ++i) {
            T* oi = op + ((ch.row0 + i) * H + h) * V;
            const T* qi = x.qr(ch.row0 + i, h);
            for (int64_t d = 0; d < K; ++d)
              for (int64_t e = 0; e < V; ++e) oi[e] += scale * std::pow(gamma, T(i + 1)) * qi[d] * S[d * V + e];
            for (int64_t j = 0; j <= i; ++j) {
              const T w = scale * std::pow(gamma, T(i - j)) * dot(qi, x.kr(ch.row0 + j, h), K);
              for (int64_t e = 0; e < V; ++e) oi[e] += w * x.vr(ch.row0 + j, h)[e];
            }
          }
          for (int64_t e = 0; e < KV; ++e) S[e] *= std::pow(gamma, T(ch.len));
          for (int64_t j = 0; j < ch.len; ++j) {
            const T w = std::pow(gamma, T(ch.len - 1 - j));
            for (int64_t d = 0; d < K; ++d)
              for (int64_t e = 0; e < V; ++e) S[d * V + e] += w * x.kr(ch.row0 + j, h)[d] * x.vr(ch.row0 + j, h)[e];
          }
        }
      }
    if (saved) saved->insert("before", before);
    return {o, fin};
  }

  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
    const SequenceLayout& L = a.L;
    const ChunkPlan& plan = a.chunks();
    const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
    const T gamma = static_cast<T>(a.options_as<FixedDecayOptions>().decay), scale = static_cast<T>(a.scale);
    const Rows<T> x{a.ptr<T>("q"), a.ptr<T>("k"), a.ptr<T>("v"), H, K, V};
    const T *dO = d_o.data<T>(), *dF = d_final.defined() ? d_final.data<T>() : nullptr;
    TensorDict g;
    for (const char* name : {"q", "k", "v", "initial_state"})
      if (a.has(name)) g.insert(name, zeros(a[name].shape(), a.dtype));
    T *dq = g.at("q").data<T>(), *dk = g.at("k").data<T>(), *dv = g.at("v").data<T>();
    std::vector<T> dS(static_cast<size_t>(KV)), dS0(static_cast<size_t>(KV));
    for (int64_t n = 0; n < L.N; ++n)
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t e = 0; e < KV; ++e) dS[e] = dF ? dF[(n * H + h) * KV + e] : T(0);
        for (int64_t c = plan.count(n) - 1; c >= 0; --c) {
          const auto& ch = plan.chunk(n, c);
          const T* S0 = saved.at("before").data<T>() + (plan.index(n, c) * H + h) * KV;
          auto row = [&](int64_t i) { return ((ch.row0 + i) * H + h); };
          for (int64_t e = 0; e < KV; ++e) dS0[e] = std::pow(gamma, T(ch.len)) * dS[e];
          for (int64_t i = 0; i < ch.len; ++i) {
            const T* doi = dO + row(i) * V;
            const T* qi = x.qr(ch.row0 + i, h);
            const T gi = scale * std::pow(gamma, T(i + 1));
            for (int64_t d = 0; d < K; ++d)
              for (int64_t e = 0; e < V; ++e) {
                dq[row(i) * K + d] += gi * S0[d * V + e] * doi[e];
                dS0[d * V + e] += gi * qi[d] * doi[e];
              }
            for (int64_t j = 0; j <= i; ++j) {
              const T w = scale * std::pow(gamma, T(i - j));
              const T *kj = x.kr(ch.row0 + j, h), *vj = x.vr(ch.row0 + j, h);
              const T dov = dot(doi, vj, V), qk = dot(qi, kj, K);
              for (int64_t d = 0; d < K; ++d) {
                dq[row(i) * K + d] += w * dov * kj[d];
                dk[row(j) * K + d] += w * dov * qi[d];
              }
              for (int64_t e = 0; e < V; ++e) dv[row(j) * V + e] += w * qk * doi[e];
            }
          }
          for (int64_t j = 0; j < ch.len; ++j) {
            const T w = std::pow(gamma, T(ch.len - 1 - j));
            const T *kj = x.kr(ch.row0 + j, h), *vj = x.vr(ch.row0 + j, h);
            for (int64_t d = 0; d < K; ++d)
              for (int64_t e = 0; e < V; ++e) {
                dk[row(j) * K + d] += w * dS[d * V + e] * vj[e];
                dv[row(j) * V + e] += w * dS[d * V + e] * kj[d];
              }
          }
          dS.swap(dS0);
        }
        if (a.has("initial_state")) std::copy(dS.begin(), dS.end(), g.at("initial_state").data<T>() + (n * H + h) * KV);
      }
    return g;
  }
};

}  // namespace

std::shared_ptr<const Primitive> fixed_decay_chunk() {
  static const auto p =
      std::make_shared<const Primitive>(make_primitive<Chunk>("toy_fixed_decay_chunk", fixed_decay_inputs(), true));
  return p;
}

}  // namespace lnx::toy
