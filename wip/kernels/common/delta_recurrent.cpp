// The recurrent (token-by-token) kernel of the delta-rule family, forward and hand-written
// backward. One (sequence, head) pair per task; the state S [K,V] lives in a per-thread
// buffer. Per token (a = exp(g_t) per key row — one value for a scalar gate, 1 without):
//   w = v − (Diag(a) S)ᵀk,  u = β w,  S ← Diag(a) S + k uᵀ,  o = scale · Sᵀ q
// Backward walks the tokens in reverse carrying dS. The states it needs are recomputed one
// segment of kSeg tokens at a time from checkpoints the forward saved at segment starts.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/common/delta_family.h"
#include "kernels/common/prefetch.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels {

namespace {

constexpr int64_t kSeg = 64;  // tokens between saved states

// Checkpoint offsets: sequence n's checkpoints are rows ck[n] .. ck[n+1] of saved [*, H, K, V].
std::vector<int64_t> checkpoint_offsets(const SequenceLayout& L) {
  std::vector<int64_t> ck(L.N + 1, 0);
  for (int64_t n = 0; n < L.N; ++n) ck[n + 1] = ck[n] + (L.length(n) + kSeg - 1) / kSeg;
  return ck;
}

template <typename T>
struct View {  // raw pointers into the contiguous inputs
  const T *q, *k, *v, *beta, *g, *h0;
  int64_t K;
  bool per_key;  // g is [B,T,H,K]
  explicit View(const DeltaArgs& a)
      : q(a.q.data<T>()),
        k(a.k.data<T>()),
        v(a.v.data<T>()),
        beta(a.beta.data<T>()),
        g(a.g.defined() ? a.g.data<T>() : nullptr),
        h0(a.h0.defined() ? a.h0.data<T>() : nullptr),
        K(a.L.K),
        per_key(a.g.defined() && a.g.dim() == 4) {}
  // Fetches the input rows of (token row, head) index r ahead of their use.
  void prefetch(int64_t r, int64_t V) const {
    prefetch_rows(q + r * K, 1, 0, K);
    prefetch_rows(k + r * K, 1, 0, K);
    prefetch_rows(v + r * V, 1, 0, V);
    if (per_key) prefetch_rows(g + r * K, 1, 0, K);
  }
  // The decay of each key row at (token row, head) index r.
  void gates(int64_t r, T* a) const {
    if (!g)
      std::fill(a, a + K, T(1));
    else if (per_key)
      for (int64_t i = 0; i < K; ++i) a[i] = std::exp(g[r * K + i]);
    else
      std::fill(a, a + K, std::exp(g[r]));
  }
};

// One token forward: S ← Diag(a) S + k uᵀ with u = β (v − (Diag(a) S)ᵀ k); returns
// w = v − (Diag(a) S)ᵀk in w and u in u; writes o (if not null) = scale · S_newᵀ q.
template <typename T>
void token_forward(T* S, int64_t K, int64_t V, const T* q, const T* k, const T* v, T beta,
                   const T* a, T scale, T* w, T* u, T* o) {
  for (int64_t j = 0; j < V; ++j) w[j] = 0;
  for (int64_t i = 0; i < K; ++i) {
    const T ki = a[i] * k[i];
    const T* Si = S + i * V;
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) w[j] += Si[j] * ki;
  }
  for (int64_t j = 0; j < V; ++j) {
    w[j] = v[j] - w[j];
    u[j] = beta * w[j];
  }
  if (o)
    for (int64_t j = 0; j < V; ++j) o[j] = 0;
  for (int64_t i = 0; i < K; ++i) {
    const T ki = k[i], qi = scale * (q ? q[i] : T(0)), ai = a[i];
    T* Si = S + i * V;
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) Si[j] = ai * Si[j] + ki * u[j];
    if (o) {
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) o[j] += Si[j] * qi;
    }
  }
}

template <typename T>
Tensor recurrent_forward(const DeltaArgs& a, Tensor& o, Tensor& fin, bool keep) {
  const SequenceLayout& L = a.L;
  const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
  const DType dt = a.q.dtype();
  o = Tensor::empty({L.B, L.T, H, V}, dt);
  fin = Tensor::empty({L.N, H, K, V}, dt);
  const std::vector<int64_t> ck = checkpoint_offsets(L);
  Tensor saved = keep ? Tensor::empty({ck[L.N], H, K, V}, dt) : Tensor();
  const View<T> in(a);
  T* op = o.data<T>();
  T* fp = fin.data<T>();
  T* sp = keep ? saved.data<T>() : nullptr;
  const T scale = static_cast<T>(a.scale);
  parallel_for(L.N * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> S(KV), w(V), u(V), gate(K);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n = p / H, h = p % H;
      if (in.h0)
        std::memcpy(S.data(), in.h0 + p * KV, KV * sizeof(T));
      else
        std::fill(S.begin(), S.end(), T(0));
      for (int64_t t = 0; t < L.length(n); ++t) {
        if (t + kPrefetchTokens < L.length(n)) {
          const int64_t ahead = (L.offsets[n] + t + kPrefetchTokens) * H + h;
          in.prefetch(ahead, V);
          prefetch_rows_for_write(op + ahead * V, 1, 0, V);
        }
        if (sp && t % kSeg == 0)
          std::memcpy(sp + ((ck[n] + t / kSeg) * H + h) * KV, S.data(), KV * sizeof(T));
        const int64_t r = (L.offsets[n] + t) * H + h;  // (token row, head)
        in.gates(r, gate.data());
        token_forward(S.data(), K, V, in.q + r * K, in.k + r * K, in.v + r * V, in.beta[r],
                      gate.data(), scale, w.data(), u.data(), op + r * V);
      }
      std::memcpy(fp + p * KV, S.data(), KV * sizeof(T));
    }
  });
  return saved;
}

template <typename T>
DeltaGrads recurrent_backward(const DeltaArgs& a, const Tensor& saved, const Tensor& d_o,
                              const Tensor& d_final) {
  const SequenceLayout& L = a.L;
  const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
  const DType dt = a.q.dtype();
  // Every token row of every sequence is written below: no zero fill.
  auto like = [](const Tensor& t) { return Tensor::empty(t.shape(), t.dtype()); };
  DeltaGrads gr;
  gr.dq = like(a.q), gr.dk = like(a.k), gr.dv = like(a.v);
  gr.dbeta = like(a.beta);
  if (a.g.defined()) gr.dg = like(a.g);
  if (a.h0.defined()) gr.dh0 = Tensor::empty({L.N, H, K, V}, dt);
  const std::vector<int64_t> ck = checkpoint_offsets(L);
  const View<T> in(a);
  const T* sp = saved.data<T>();
  const T* dop = d_o.data<T>();
  const T* dfp = d_final.defined() ? d_final.data<T>() : nullptr;
  T *dq = gr.dq.data<T>(), *dk = gr.dk.data<T>(), *dv = gr.dv.data<T>(), *db = gr.dbeta.data<T>();
  T* dg = a.g.defined() ? gr.dg.data<T>() : nullptr;
  T* dh0 = a.h0.defined() ? gr.dh0.data<T>() : nullptr;
  const T scale = static_cast<T>(a.scale);
  // Every row the segment's backward reads or writes at (token row, head) index r.
  auto prefetch_token = [&](int64_t r) {
    in.prefetch(r, V);
    prefetch_rows(dop + r * V, 1, 0, V);
    prefetch_rows_for_write(dq + r * K, 1, 0, K);
    prefetch_rows_for_write(dk + r * K, 1, 0, K);
    prefetch_rows_for_write(dv + r * V, 1, 0, V);
    if (in.per_key) prefetch_rows_for_write(dg + r * K, 1, 0, K);
  };
  parallel_for(L.N * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> seg((kSeg + 1) * KV), useg(kSeg * V), wseg(kSeg * V), dS(KV), du(V), dkv(V),
        dk1(K);
    std::vector<T> gate(K);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n = p / H, h = p % H, len = L.length(n);
      if (dfp)
        std::memcpy(dS.data(), dfp + p * KV, KV * sizeof(T));
      else
        std::fill(dS.begin(), dS.end(), T(0));
      for (int64_t c = (len + kSeg - 1) / kSeg - 1; c >= 0; --c) {
        const int64_t t0 = c * kSeg, n_tok = std::min(kSeg, len - t0);
        // Recompute the segment: seg[s] is the state before token t0 + s.
        std::memcpy(seg.data(), sp + ((ck[n] + c) * H + h) * KV, KV * sizeof(T));
        for (int64_t s = 0; s < std::min(n_tok, kPrefetchTokens); ++s) prefetch_token((L.offsets[n] + t0 + s) * H + h);
        for (int64_t s = 0; s < n_tok; ++s) {
          if (s + kPrefetchTokens < n_tok) prefetch_token((L.offsets[n] + t0 + s + kPrefetchTokens) * H + h);
          const int64_t r = (L.offsets[n] + t0 + s) * H + h;
          T* next = seg.data() + (s + 1) * KV;
          std::memcpy(next, seg.data() + s * KV, KV * sizeof(T));
          in.gates(r, gate.data());
          token_forward<T>(next, K, V, nullptr, in.k + r * K, in.v + r * V, in.beta[r], gate.data(),
                           scale, wseg.data() + s * V, useg.data() + s * V, nullptr);
        }
        for (int64_t s = n_tok - 1; s >= 0; --s) {
          const int64_t r = (L.offsets[n] + t0 + s) * H + h;
          const T* Sp = seg.data() + s * KV;
          const T *q = in.q + r * K, *k = in.k + r * K, *dor = dop + r * V;
          const T *u = useg.data() + s * V, *w = wseg.data() + s * V;
          const T beta = in.beta[r];
          in.gates(r, gate.data());
          T udo = 0;
          for (int64_t j = 0; j < V; ++j) udo += u[j] * dor[j];
          // o = scale Sᵀq: dS += scale q doᵀ. S = a Sp + k uᵀ: dk += dS u, du = dSᵀ k.
          std::fill(du.begin(), du.end(), T(0));
          for (int64_t i = 0; i < K; ++i) {
            const T qi = scale * q[i], ki = k[i];
            T* dSi = dS.data() + i * V;
            T acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < V; ++j) {
              dSi[j] += qi * dor[j];
              acc += dSi[j] * u[j];
              du[j] += dSi[j] * ki;
            }
            dk1[i] = acc;
          }
          // u = β (v − (Diag(a) Sp)ᵀ k)
          T dbeta = 0;
          for (int64_t j = 0; j < V; ++j) {
            dbeta += du[j] * w[j];
            dv[r * V + j] = beta * du[j];
            dkv[j] = -beta * du[j];  // gradient of (Diag(a) Sp)ᵀk
          }
          db[r] = dbeta;
          T dgate = 0;
          for (int64_t i = 0; i < K; ++i) {
            const T* Spi = Sp + i * V;
            T* dSi = dS.data() + i * V;
            const T ki = k[i], ai = gate[i];
            T sdo = 0, sdkv = 0, dga = 0;
#pragma omp simd reduction(+ : sdo, sdkv, dga)
            for (int64_t j = 0; j < V; ++j) {
              sdo += Spi[j] * dor[j];
              sdkv += Spi[j] * dkv[j];
              const T dSp = dSi[j] + ki * dkv[j];  // gradient of S' = Diag(a) Sp
              dga += dSp * Spi[j];
              dSi[j] = ai * dSp;
            }
            dq[r * K + i] = scale * (ai * sdo + ki * udo);
            dk[r * K + i] = dk1[i] + ai * sdkv;
            if (in.per_key) dg[r * K + i] = ai * dga;
            dgate += ai * dga;
          }
          if (dg && !in.per_key) dg[r] = dgate;
        }
      }
      if (dh0) std::memcpy(dh0 + p * KV, dS.data(), KV * sizeof(T));
    }
  });
  return gr;
}

}  // namespace

DeltaKernel delta_recurrent_kernel() {
  DeltaKernel kern;
  kern.forward = [](const DeltaArgs& a, Tensor& o, Tensor& fin, bool keep) {
    return dispatch_float(a.q.dtype(), a.op,
                          [&]<typename T>() { return recurrent_forward<T>(a, o, fin, keep); });
  };
  kern.backward = [](const DeltaArgs& a, const Tensor& saved, const Tensor& d_o,
                     const Tensor& d_final) {
    return dispatch_float(a.q.dtype(), a.op, [&]<typename T>() {
      return recurrent_backward<T>(a, saved, d_o, d_final);
    });
  };
  return kern;
}

}  // namespace lnx::kernels
