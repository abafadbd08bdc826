// gla's chunk form: per (sequence, head), chunks of the driver's ChunkPlan in order (forward)
// and in reverse (backward), each a handful of GEMMs (lnx::gemm, single-threaded inside
// parallel_for) plus small exact loops for the diagonal sub-blocks. The factors are described
// in chunk_internal.h.
//
// Forward, per chunk with incoming state S:
//   o = Qg S + A v;   S ← Diag(a_last) S + Kdᵀ v.
// The backward keeps each chunk's incoming state and scores from the forward, and runs the
// chunks in reverse with the state gradient dS (starting at dfinal):
//   dA = tril(do vᵀ);  dv = Aᵀ do + Kd dS;  dQg = do Sᵀ;  dKd = v dSᵀ;
//   dq̃ = dQg ⊙ exp(P) + (dA k-terms),  dk = dKd ⊙ exp(R) + (dA q-terms);
//   dS ← Diag(a_last) dS + Qgᵀ do;  after the first chunk dh0 = dS.
// dg is explicit and local to the chunk: with dP_i = ∂L/∂P_i and dR_j = ∂L/∂R_j,
//   dg_s = Σ_{i≥s} dP_i + Σ_{j<s} dR_j,
//   dP_i = Qg_i ⊙ dQg_i + q̃_i ⊙ dq̃ˢ_i − k_i ⊙ dkˢ_i  (+ a_last ⊙ rowsum(dS ⊙ S) at the last row),
//   dR_j = Kd_j ⊙ dKd_j,
// where dq̃ˢ, dkˢ are the score gradients of the strictly-lower pairs only (a pair i = j adds
// the same amount to both terms of dP_i, so it is left out rather than cancelled in rounding).
//
// Each thread walks a contiguous range of (sequence, head) pairs (balanced by chunk count),
// chunk by chunk over its pairs: neighbouring heads' rows are neighbours in memory, so one
// chunk's rows stream in together.
#include <algorithm>
#include <vector>

#include "kernels/common/kernel_math.h"
#include "kernels/gla/chunk_internal.h"
#include "kernels/gla/gla_internal.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels::gla_detail {

namespace {

constexpr Transpose N_ = kNoTrans, T_ = kTrans;

// Raw pointers into the inputs.
template <typename T> struct Ptrs {
  const T *q, *k, *v, *g, *h0;
  explicit Ptrs(const KernelArgs& a)
      : q(a.ptr<T>("q")), k(a.ptr<T>("k")), v(a.ptr<T>("v")), g(a.ptr<T>("g")), h0(a.ptr<T>("initial_state")) {}
};

// Sizes and strides the forward and the backward share.
template <typename T> struct Dims {
  const ChunkPlan& plan;
  const Ptrs<T> p;
  const int64_t H, K, V, KV, C, sK, sV;  // C: the chunk size; sK, sV: token row strides
  const T scale;
  explicit Dims(const KernelArgs& a)
      : plan(a.chunks()),
        p(a),
        H(a.L.H),
        K(a.L.K),
        V(a.L.V),
        KV(K * V),
        C(plan.size),
        sK(H * K),
        sV(H * V),
        scale(static_cast<T>(a.scale)) {}
  // Chunks of the longest sequence among pairs b .. e.
  int64_t most_chunks(int64_t b, int64_t e) const {
    int64_t most = 0;
    for (int64_t pair = b; pair < e; ++pair) most = std::max(most, plan.count(pair / H));
    return most;
  }
};

// keep: a backward will follow, so the state before every chunk [chunks, H, K, V] and the
// chunk's scores [chunks, H, C, C] are kept for it.
template <typename T> struct Forward : Dims<T> {
  using Dims<T>::plan, Dims<T>::p, Dims<T>::H, Dims<T>::K, Dims<T>::V, Dims<T>::KV, Dims<T>::C, Dims<T>::sK,
      Dims<T>::sV, Dims<T>::scale;
  Tensor o, final_state, states, scores;
  T *op, *Fp, *Sv = nullptr, *Av = nullptr;

  Forward(const KernelArgs& a, bool keep) : Dims<T>(a) {
    o = Tensor::empty({a.L.B, a.L.T, H, V}, a.dtype);
    final_state = Tensor::empty({a.L.N, H, K, V}, a.dtype);
    if (keep) {
      states = Tensor::empty({plan.total(), H, K, V}, a.dtype);
      scores = Tensor::empty({plan.total(), H, C, C}, a.dtype);
      Sv = states.data<T>();
      Av = scores.data<T>();
    }
    op = o.data<T>();
    Fp = final_state.data<T>();
  }

  // Chunk c of sequence n, head h, with S the state before it: its outputs, and S becomes the
  // state after it.
  void chunk(ChunkScratch<T>& w, int64_t n, int64_t c, int64_t h, T* S) const {
    const ChunkPlan::Chunk& ch = plan.chunk(n, c);
    const int64_t m = ch.len, ok = (ch.row0 * H + h) * K, ov = (ch.row0 * H + h) * V;
    w.prepare(p.q + ok, p.k + ok, p.g + ok, sK, m, scale);
    T* oc = op + ov;
    const T* vc = p.v + ov;
    gemm(N_, N_, m, V, K, T(1), w.Qg.data(), K, S, V, T(0), oc, sV);
    w.scores();
    for (int64_t I = 0, nsub = w.subchunks(); I < nsub; ++I) {
      const int64_t s0 = I * w.c, s1 = std::min(m, s0 + w.c);
      gemm(N_, N_, s1 - s0, V, s1, T(1), w.A.data() + s0 * C, C, vc, sV, T(1), oc + s0 * sV, sV);
    }
    if (Sv) {
      const int64_t slot = plan.index(n, c) * H + h;
      std::copy(S, S + KV, Sv + slot * KV);
      std::copy(w.A.begin(), w.A.end(), Av + slot * C * C);
    }
    for (int64_t i = 0; i < K; ++i)
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) S[i * V + j] *= w.alast[i];
    gemm(T_, N_, K, V, m, T(1), w.Kd.data(), K, vc, sV, T(1), S, V);
  }

  // Pairs b .. e (one thread's), their states in their final-state slots.
  void pairs(int64_t b, int64_t e) const {
    ChunkScratch<T> w(C, K, V);
    for (int64_t pair = b; pair < e; ++pair) {
      T* S = Fp + pair * KV;
      if (p.h0)
        std::copy(p.h0 + pair * KV, p.h0 + (pair + 1) * KV, S);
      else
        std::fill(S, S + KV, T(0));
    }
    for (int64_t c = 0, most = this->most_chunks(b, e); c < most; ++c)
      for (int64_t pair = b; pair < e; ++pair) {
        const int64_t n = pair / H, h = pair % H;
        if (c < plan.count(n)) chunk(w, n, c, h, Fp + pair * KV);
      }
  }
};

// The backward over one thread's pairs, with that thread's scratch. One chunk's phases run in
// the order of Backward::chunk; each reads what the previous ones left in the scratch.
template <typename T> struct Backward : Dims<T> {
  using Dims<T>::plan, Dims<T>::p, Dims<T>::H, Dims<T>::K, Dims<T>::V, Dims<T>::KV, Dims<T>::C, Dims<T>::sK,
      Dims<T>::sV, Dims<T>::scale;
  const T *Sv, *Av, *dop, *dFp;
  T *dq, *dk, *dv, *dg, *dh0;
  ChunkScratch<T> w;
  std::vector<T> dA;                          // [C, C]: tril(do vᵀ)
  std::vector<T> dQ, dKd, dqs, dks, dP, tmp;  // [C, K]: dQg, dKd, score gradients, dP, GEMM output
  std::vector<T> run, E;                      // [K]

  // The chunk being worked on: its length, offsets of its first row, incoming state and scores.
  struct At {
    int64_t m, ok, ov;
    const T *S, *A;
  };

  Backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final, TensorDict& gr)
      : Dims<T>(a),
        Sv(saved.at("states").data<T>()),
        Av(saved.at("scores").data<T>()),
        dop(d_o.data<T>()),
        dFp(d_final.defined() ? d_final.data<T>() : nullptr),
        dq(gr.at("q").data<T>()),
        dk(gr.at("k").data<T>()),
        dv(gr.at("v").data<T>()),
        dg(gr.at("g").data<T>()),
        dh0(gr.contains("initial_state") ? gr.at("initial_state").data<T>() : nullptr),
        w(C, K, V),
        dA(static_cast<size_t>(C * C)),
        dQ(static_cast<size_t>(C * K)),
        dKd(dQ.size()),
        dqs(dQ.size()),
        dks(dQ.size()),
        dP(dQ.size()),
        tmp(dQ.size()),
        run(static_cast<size_t>(K)),
        E(run.size()) {}

  // dA = tril(do vᵀ); dv = Aᵀ do + Kd dS; the inter-chunk terms dQg = do Sᵀ, dKd = v dSᵀ.
  void value_grads(const At& at, const T* dS) {
    const int64_t m = at.m;
    const T *vc = p.v + at.ov, *doc = dop + at.ov;
    T* dvc = dv + at.ov;
    gemm(N_, T_, m, m, V, T(1), doc, sV, vc, sV, T(0), dA.data(), C);
    for (int64_t i = 0; i < m; ++i) std::fill(dA.begin() + i * C + i + 1, dA.begin() + i * C + m, T(0));
    gemm(T_, N_, m, V, m, T(1), at.A, C, doc, sV, T(0), dvc, sV);
    gemm(N_, N_, m, V, K, T(1), w.Kd.data(), K, dS, V, T(1), dvc, sV);
    gemm(N_, T_, m, K, V, T(1), doc, sV, at.S, V, T(0), dQ.data(), K);
    gemm(N_, T_, m, K, V, T(1), vc, sV, dS, V, T(0), dKd.data(), K);
  }

  // Score gradients of sub-chunk I (rows s0 .. s1) against the earlier sub-chunks, by GEMM.
  void score_grads_below(int64_t I, int64_t s0, int64_t s1) {
    w.build_kp(I);
    const T* dAI = dA.data() + s0 * C;
    gemm(N_, N_, s1 - s0, K, s0, T(1), dAI, C, w.kp.data(), K, T(0), tmp.data(), K);
    for (int64_t i = s0; i < s1; ++i)
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) dqs[i * K + d] += tmp[(i - s0) * K + d] * w.elp[i * K + d];
    gemm(T_, N_, s0, K, s1 - s0, T(1), dAI, C, w.qh.data() + s0 * K, K, T(0), tmp.data(), K);
    for (int64_t j = 0; j < s0; ++j)
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) dks[j * K + d] += tmp[j * K + d] * w.fp[j * K + d];
  }

  // Strictly-lower score gradients inside one sub-chunk (rows s0 .. s1), exactly, with the
  // running product E = Π_{s=j+1..i} a_s.
  void score_grads_inside(int64_t s0, int64_t s1) {
    for (int64_t i = s0 + 1; i < s1; ++i) {
      const T* qi = w.qs.data() + i * K;
      T* dqi = dqs.data() + i * K;
      std::copy(w.a.begin() + i * K, w.a.begin() + (i + 1) * K, E.begin());
      for (int64_t j = i - 1; j >= s0; --j) {
        const T dAij = dA[i * C + j];
        const T *kj = w.kc.data() + j * K, *aj = w.a.data() + j * K;
        T* dkj = dks.data() + j * K;
#pragma omp simd
        for (int64_t d = 0; d < K; ++d) {
          dqi[d] += dAij * kj[d] * E[d];
          dkj[d] += dAij * qi[d] * E[d];
          E[d] *= aj[d];
        }
      }
    }
  }

  // dqs, dks: the strictly-lower score gradients, sub-chunk pairs by GEMM, inside sub-chunks exactly.
  void score_grads(const At& at) {
    std::fill(dqs.begin(), dqs.end(), T(0));
    std::fill(dks.begin(), dks.end(), T(0));
    for (int64_t I = 0, nsub = w.subchunks(); I < nsub; ++I) {
      const int64_t s0 = I * w.c, s1 = std::min(at.m, s0 + w.c);
      if (I > 0) score_grads_below(I, s0, s1);
      score_grads_inside(s0, s1);
    }
  }

  // dP (the gradient of the prefix exponents, before its suffix sum) and the full dq, dk.
  void query_key_grads(const At& at) {
    for (int64_t i = 0; i < at.m; ++i) {
      const T dAii = dA[i * C + i];
      const T *qi = w.qs.data() + i * K, *ki = w.kc.data() + i * K;
      T *dqo = dq + at.ok + i * sK, *dko = dk + at.ok + i * sK;
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) {
        const int64_t x = i * K + d;
        dP[x] = w.Qg[x] * dQ[x] + qi[d] * dqs[x] - ki[d] * dks[x];
        dqo[d] = scale * (dQ[x] * w.eP[x] + dqs[x] + dAii * ki[d]);
        dko[d] = dKd[x] * w.eR[x] + dks[x] + dAii * qi[d];
      }
    }
  }

  // dg_s = Σ_{i≥s} dP_i + Σ_{j<s} dR_j, dR_j = Kd_j ⊙ dKd_j (dP_{m−1} gains the path through
  // the state after the chunk, a_last ⊙ rowsum(dS ⊙ S)).
  void gate_grads(const At& at, const T* dS) {
    const int64_t m = at.m;
    for (int64_t i = 0; i < K; ++i) dP[(m - 1) * K + i] += w.alast[i] * dot(dS + i * V, at.S + i * V, V);
    std::fill(run.begin(), run.end(), T(0));
    for (int64_t i = m - 1; i >= 0; --i)
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) {
        run[d] += dP[i * K + d];
        dP[i * K + d] = run[d];
      }
    std::fill(run.begin(), run.end(), T(0));
    for (int64_t i = 0; i < m; ++i) {
      T* dgo = dg + at.ok + i * sK;
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) {
        dgo[d] = dP[i * K + d] + run[d];
        run[d] += w.Kd[i * K + d] * dKd[i * K + d];
      }
    }
  }

  // dS ← Diag(a_last) dS + Qgᵀ do: the gradient of the state before the chunk.
  void state_grad(const At& at, T* dS) const {
    for (int64_t i = 0; i < K; ++i)
#pragma omp simd
      for (int64_t j = 0; j < V; ++j) dS[i * V + j] *= w.alast[i];
    gemm(T_, N_, K, V, at.m, T(1), w.Qg.data(), K, dop + at.ov, sV, T(1), dS, V);
  }

  // Chunk c of sequence n, head h, with dS the gradient of the state after it.
  void chunk(int64_t n, int64_t c, int64_t h, T* dS) {
    const ChunkPlan::Chunk& ch = plan.chunk(n, c);
    const int64_t slot = plan.index(n, c) * H + h;
    const At at{ch.len, (ch.row0 * H + h) * K, (ch.row0 * H + h) * V, Sv + slot * KV, Av + slot * C * C};
    w.prepare(p.q + at.ok, p.k + at.ok, p.g + at.ok, sK, at.m, scale);
    value_grads(at, dS);
    score_grads(at);
    query_key_grads(at);
    gate_grads(at, dS);
    state_grad(at, dS);
  }

  // Pairs b .. e (one thread's), chunks in reverse, each over the pairs (as the forward).
  void pairs(int64_t b, int64_t e) {
    std::vector<T> dS_all(static_cast<size_t>((e - b) * KV));  // each pair's dS
    for (int64_t pair = b; pair < e; ++pair) {
      T* dS = dS_all.data() + (pair - b) * KV;
      if (dFp)
        std::copy(dFp + pair * KV, dFp + (pair + 1) * KV, dS);
      else
        std::fill(dS, dS + KV, T(0));
    }
    for (int64_t c = this->most_chunks(b, e) - 1; c >= 0; --c)
      for (int64_t pair = b; pair < e; ++pair) {
        const int64_t n = pair / H, h = pair % H;
        if (c < plan.count(n)) chunk(n, c, h, dS_all.data() + (pair - b) * KV);
      }
    if (dh0) std::copy(dS_all.begin(), dS_all.end(), dh0 + b * KV);
  }
};

struct ChunkForm {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    Forward<T> f(a, saved != nullptr);
    parallel_for_weighted(
        a.L.N * a.L.H, [&](int64_t pair) { return f.plan.count(pair / a.L.H); },
        [&](int64_t b, int64_t e) { f.pairs(b, e); });
    if (saved) {
      saved->insert("states", f.states);
      saved->insert("scores", f.scores);
    }
    return {f.o, f.final_state};
  }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
    TensorDict g;
    for (const char* name : {"q", "k", "v", "g", "initial_state"})
      if (a.has(name)) g.insert(name, Tensor::empty(a[name].shape(), a.dtype));
    const ChunkPlan& plan = a.chunks();
    parallel_for_weighted(
        a.L.N * a.L.H, [&](int64_t pair) { return plan.count(pair / a.L.H); },
        [&](int64_t b, int64_t e) {
          Backward<T> w(a, saved, d_o, d_final, g);
          w.pairs(b, e);
        });
    return g;
  }
};

}  // namespace

const Primitive& chunk_primitive() {
  static const Primitive p = make_primitive<ChunkForm>("gla_chunk", input_specs(), true);
  return p;
}

}  // namespace lnx::kernels::gla_detail
