// The recurrent form of the delta-rule family: a fused token loop per (sequence, head) with
// a hand-written vjp. Per token, with a = exp(g_t) per key row (one value for a scalar gate,
// 1 without):
//   w = v − (Diag(a) S)ᵀ k,  u = β w,  S ← Diag(a) S + k uᵀ,  o = scale · Sᵀ q
// The forward keeps the state before every segment of kSegment tokens when a backward will
// follow. The backward walks each segment in reverse carrying dS (the gradient of the state
// after the token), after recomputing the segment's states, w and u from its kept state:
//   dS += scale · q doᵀ;  dk = dS u + Diag(a) S_prev dkv;  du = dSᵀ k
//   dv = β du,  dβ = du · w,  dkv = −β du  (the gradient of S'ᵀk, S' = Diag(a) S_prev)
//   dq = scale · (Diag(a) S_prev do + k (u · do)),  dg_i = a_i ⟨S_prev,i, dS'_i⟩,  dS ← Diag(a) dS'
// with dS' = dS + k dkvᵀ. (sequence, head) pairs run in parallel, each owning its rows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/common/delta_family/delta_family_internal.h"
#include "kernels/common/prefetch.h"
#include "kernels/common/streaming_store.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels::delta_detail {

namespace {

constexpr int64_t kSegment = 64;  // tokens between kept states

// The inputs and the segment plan (the states kept per segment: slot plan.index(n, c)).
template <typename T> struct Inputs {
  const T *q, *k, *v;  // [B, T, H, K], [B, T, H, K], [B, T, H, V]
  const T *beta, *g;   // [B, T, H]; [B, T, H] or [B, T, H, K] (null without gates)
  const T* h0;         // [N, H, K, V] or null
  const int64_t H, K, V, KV;
  const bool per_key;  // g is [B,T,H,K]
  const T scale;
  const ChunkPlan segments;

  explicit Inputs(const KernelArgs& a)
      : q(a.ptr<T>("q")),
        k(a.ptr<T>("k")),
        v(a.ptr<T>("v")),
        beta(a.ptr<T>("beta")),
        g(a.ptr<T>("g")),
        h0(a.ptr<T>("initial_state")),
        H(a.L.H),
        K(a.L.K),
        V(a.L.V),
        KV(K * V),
        per_key(a.has("g") && a["g"].dim() == 4),
        scale(static_cast<T>(a.scale)),
        segments(ChunkPlan::make(a.L, kSegment)) {}

  // The decay of each key row at (token row, head) index r.
  void gates(int64_t r, T* decay) const {
    if (!g)
      std::fill(decay, decay + K, T(1));
    else if (per_key)
      for (int64_t i = 0; i < K; ++i) decay[i] = std::exp(g[r * K + i]);
    else
      std::fill(decay, decay + K, std::exp(g[r]));
  }
  // The input rows of (token row, head) index r, fetched ahead of their use.
  void prefetch(int64_t r) const {
    prefetch_rows(q + r * K, 1, 0, K);
    prefetch_rows(k + r * K, 1, 0, K);
    prefetch_rows(v + r * V, 1, 0, V);
    if (per_key) prefetch_rows(g + r * K, 1, 0, K);
  }
  void initial_state(int64_t pair, T* S) const {
    if (h0)
      std::copy(h0 + pair * KV, h0 + (pair + 1) * KV, S);
    else
      std::fill(S, S + KV, T(0));
  }
  // One token: S ← Diag(decay) S + k uᵀ with u = β w, w = v − (Diag(decay) S)ᵀ k; writes w,
  // u and, when o is given, o = scale · Sᵀ q. The state before the token is read from `from`
  // and the state after it written to S (in place when they are equal).
  void token(const T* from, T* S, int64_t r, const T* decay, T* w, T* u, T* o) const {
    const T *kr = k + r * K, *vr = v + r * V, *qr = q + r * K;
    const T b = beta[r];  // a local: the stores to w and u below could alias beta
    std::fill(w, w + V, T(0));
    for (int64_t i = 0; i < K; ++i) {
      const T ki = decay[i] * kr[i];
      const T* Si = from + i * V;
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) w[j] += Si[j] * ki;
    }
    for (int64_t j = 0; j < V; ++j) {
      w[j] = vr[j] - w[j];
      u[j] = b * w[j];
    }
    if (o) std::fill(o, o + V, T(0));
    for (int64_t i = 0; i < K; ++i) {
      const T ki = kr[i], qi = o ? scale * qr[i] : T(0), ai = decay[i];
      const T* Fi = from + i * V;
      T* Si = S + i * V;
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) Si[j] = ai * Fi[j] + ki * u[j];
      if (o) {
#pragma omp simd
        for (int64_t j = 0; j < V; ++j) o[j] += Si[j] * qi;
      }
    }
  }
};

// One thread's scratch for the forward: the state, updated in cache, and a token's rows.
template <typename T> struct ForwardScratch {
  std::vector<T> S, w, u, decay;
  explicit ForwardScratch(const Inputs<T>& in)
      : S(static_cast<size_t>(in.KV)), w(in.V), u(in.V), decay(static_cast<size_t>(in.K)) {}
};

// The forward of one (sequence, head) pair; keeps the segment states when kept is given. The
// first token reads the initial state where it lies, the state is updated in the scratch (in
// cache), and streamed to its final slot at the end: a decoding step reads h0 once (its second
// pass hits the cache) and writes the final state once (streaming_store.h).
template <typename T> void forward_pair(const Inputs<T>& in, const SequenceLayout& L, int64_t pair, T* op, T* fin,
                                        T* kept, ForwardScratch<T>& scratch) {
  const int64_t H = in.H, V = in.V, KV = in.KV, n = pair / H, h = pair % H, len = L.length(n);
  auto& [S, w, u, decay] = scratch;
  const T* from = in.h0 ? in.h0 + pair * KV : nullptr;  // the state before the next token
  if (!from || kept) {
    in.initial_state(pair, S.data());  // zeros, or kept below as segment 0's state
    from = S.data();
  }
  for (int64_t t = 0; t < len; ++t) {
    if (t + kPrefetchTokens < len) {
      const int64_t ahead = (L.offsets[n] + t + kPrefetchTokens) * H + h;
      in.prefetch(ahead);
      prefetch_rows_for_write(op + ahead * V, 1, 0, V);
    }
    if (kept && t % kSegment == 0)
      std::copy(S.begin(), S.end(), kept + (in.segments.index(n, t / kSegment) * H + h) * KV);
    const int64_t r = (L.offsets[n] + t) * H + h;  // (token row, head)
    in.gates(r, decay.data());
    in.token(from, S.data(), r, decay.data(), w.data(), u.data(), op + r * V);
    from = S.data();
  }
  streaming_store(fin + pair * KV, from, KV);  // h0 itself for an empty sequence
}

// The backward of one (sequence, head) pair at a time; its scratch belongs to one thread.
template <typename T> struct Backward {
  const Inputs<T>& in;
  const SequenceLayout& L;
  const T* kept;                            // [segments, H, K, V]: the state before every segment
  const T *dop, *dfin;                      // do [B, T, H, V]; dfinal [N, H, K, V] or null
  T *dq, *dk, *dv, *dbeta;                  // like q, k, v, beta
  T *dg, *dh0;                              // like g, initial_state; null when they are not inputs
  std::vector<T> seg;                       // [kSegment + 1, K, V]: seg[s] = the state before token s of the segment
  std::vector<T> useg, wseg;                // [kSegment, V]: u and w of the segment's tokens
  std::vector<T> dS;                        // [K, V]: the gradient of the state after the current token
  std::vector<T> du, dkv, dk_state, decay;  // [V], [V], [K], [K]

  Backward(const Inputs<T>& in_, const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final,
           TensorDict& g)
      : in(in_),
        L(a.L),
        kept(saved.at("segment_states").data<T>()),
        dop(d_o.data<T>()),
        dfin(d_final.defined() ? d_final.data<T>() : nullptr),
        dq(g.at("q").data<T>()),
        dk(g.at("k").data<T>()),
        dv(g.at("v").data<T>()),
        dbeta(g.at("beta").data<T>()),
        dg(g.contains("g") ? g.at("g").data<T>() : nullptr),
        dh0(g.contains("initial_state") ? g.at("initial_state").data<T>() : nullptr),
        seg((kSegment + 1) * in.KV),
        useg(kSegment * in.V),
        wseg(kSegment * in.V),
        dS(in.KV),
        du(in.V),
        dkv(in.V),
        dk_state(in.K),
        decay(in.K) {}

  // Every row the backward of (token row, head) index r reads or writes.
  void prefetch_token(int64_t r) const {
    const int64_t K = in.K, V = in.V;
    in.prefetch(r);
    prefetch_rows(dop + r * V, 1, 0, V);
    prefetch_rows_for_write(dq + r * K, 1, 0, K);
    prefetch_rows_for_write(dk + r * K, 1, 0, K);
    prefetch_rows_for_write(dv + r * V, 1, 0, V);
    if (in.per_key) prefetch_rows_for_write(dg + r * K, 1, 0, K);
  }
  // The states of segment c of sequence n (seg), and w, u of its tokens, from the kept state.
  void recompute_segment(int64_t n, int64_t h, int64_t c, int64_t t0, int64_t len) {
    const int64_t KV = in.KV, H = in.H;
    const T* start = kept + (in.segments.index(n, c) * H + h) * KV;
    std::copy(start, start + KV, seg.begin());
    for (int64_t s = 0; s < std::min(len, kPrefetchTokens); ++s) prefetch_token((L.offsets[n] + t0 + s) * H + h);
    for (int64_t s = 0; s < len; ++s) {
      if (s + kPrefetchTokens < len) prefetch_token((L.offsets[n] + t0 + s + kPrefetchTokens) * H + h);
      const int64_t r = (L.offsets[n] + t0 + s) * H + h;
      T* next = seg.data() + (s + 1) * KV;
      std::copy(seg.begin() + s * KV, seg.begin() + (s + 1) * KV, next);
      in.gates(r, decay.data());
      in.token(next, next, r, decay.data(), wseg.data() + s * in.V, useg.data() + s * in.V, nullptr);
    }
  }
  // The read o = scale·Sᵀq and the update S = S' + k uᵀ: dS gains scale·q doᵀ, then gives
  // dk (its u part), du = dSᵀk, dv, dβ and dkv = −β du.
  void read_and_update(int64_t r, const T* u, const T* w) {
    const int64_t K = in.K, V = in.V;
    const T *q = in.q + r * K, *k = in.k + r * K, *dor = dop + r * V;
    std::fill(du.begin(), du.end(), T(0));
    for (int64_t i = 0; i < K; ++i) {
      const T qi = in.scale * q[i], ki = k[i];
      T* dSi = dS.data() + i * V;
      T acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < V; ++j) {
        dSi[j] += qi * dor[j];
        acc += dSi[j] * u[j];
        du[j] += dSi[j] * ki;
      }
      dk_state[i] = acc;
    }
    const T beta = in.beta[r];
    T db = 0;
    for (int64_t j = 0; j < V; ++j) {
      db += du[j] * w[j];
      dv[r * V + j] = beta * du[j];
      dkv[j] = -beta * du[j];
    }
    dbeta[r] = db;
  }
  // The decayed state S' = Diag(a) S_prev read by w and carried by the update: dq, the rest
  // of dk, dg, and dS ← Diag(a) (dS + k dkvᵀ).
  void decay_and_read(int64_t r, const T* Sprev, const T* u) {
    const int64_t K = in.K, V = in.V;
    const T *k = in.k + r * K, *dor = dop + r * V;
    T udo = 0;
    for (int64_t j = 0; j < V; ++j) udo += u[j] * dor[j];
    in.gates(r, decay.data());
    T dgate = 0;
    for (int64_t i = 0; i < K; ++i) {
      const T* Si = Sprev + i * V;
      T* dSi = dS.data() + i * V;
      const T ki = k[i], ai = decay[i];
      T sdo = 0, sdkv = 0, dga = 0;
#pragma omp simd reduction(+ : sdo, sdkv, dga)
      for (int64_t j = 0; j < V; ++j) {
        sdo += Si[j] * dor[j];
        sdkv += Si[j] * dkv[j];
        const T dSp = dSi[j] + ki * dkv[j];  // the gradient of S'
        dga += dSp * Si[j];
        dSi[j] = ai * dSp;
      }
      dq[r * K + i] = in.scale * (ai * sdo + ki * udo);
      dk[r * K + i] = dk_state[i] + ai * sdkv;
      if (in.per_key) dg[r * K + i] = ai * dga;
      dgate += ai * dga;
    }
    if (dg && !in.per_key) dg[r] = dgate;
  }
  void pair(int64_t p) {
    const int64_t H = in.H, KV = in.KV, n = p / H, h = p % H, len = L.length(n);
    if (dfin)
      std::copy(dfin + p * KV, dfin + (p + 1) * KV, dS.begin());
    else
      std::fill(dS.begin(), dS.end(), T(0));
    for (int64_t c = in.segments.count(n) - 1; c >= 0; --c) {
      const int64_t t0 = c * kSegment, tokens = std::min(kSegment, len - t0);
      recompute_segment(n, h, c, t0, tokens);
      for (int64_t s = tokens - 1; s >= 0; --s) {
        const int64_t r = (L.offsets[n] + t0 + s) * H + h;
        read_and_update(r, useg.data() + s * in.V, wseg.data() + s * in.V);
        decay_and_read(r, seg.data() + s * KV, useg.data() + s * in.V);
      }
    }
    if (dh0) std::copy(dS.begin(), dS.end(), dh0 + p * KV);
  }
};

struct Recurrent {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    const SequenceLayout& L = a.L;
    const Inputs<T> in(a);
    KernelOutputs out = empty_outputs(a);
    Tensor kept = saved ? Tensor::empty({in.segments.total(), L.H, L.K, L.V}, a.dtype) : Tensor();
    T *op = out.o.data<T>(), *fin = out.final_state.data<T>(), *kp = saved ? kept.data<T>() : nullptr;
    parallel_for(L.N * L.H, 1, [&](int64_t b, int64_t e) {
      ForwardScratch<T> scratch(in);
      for (int64_t pair = b; pair < e; ++pair) forward_pair(in, L, pair, op, fin, kp, scratch);
      streaming_store_fence();
    });
    if (saved) saved->insert("segment_states", kept);
    return out;
  }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
    TensorDict g = empty_gradients(a);
    const Inputs<T> in(a);
    parallel_for(a.L.N * a.L.H, 1, [&](int64_t b, int64_t e) {
      Backward<T> w(in, a, saved, d_o, d_final, g);
      for (int64_t pair = b; pair < e; ++pair) w.pair(pair);
    });
    return g;
  }
};

}  // namespace

const Primitive& recurrent_primitive(Gate gate) {
  static const Primitive primitives[] = {
      make_primitive<Recurrent>("delta_rule_recurrent", input_specs(Gate::none), false),
      make_primitive<Recurrent>("gated_delta_rule_recurrent", input_specs(Gate::scalar), false),
      make_primitive<Recurrent>("kda_recurrent", input_specs(Gate::per_key), false)};
  return primitives[static_cast<int>(gate)];
}

}  // namespace lnx::kernels::delta_detail
