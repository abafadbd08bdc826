// gla's chunk form: per (sequence, head), chunks of C tokens in order (forward) and in reverse
// (backward), each a handful of GEMMs (lnx::gemm, single-threaded inside parallel_for) plus
// small exact loops for the diagonal sub-blocks. The factors are described in chunk.h.
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
#include <algorithm>
#include <vector>

#include "kernels/gla/args.h"
#include "kernels/gla/chunk.h"
#include "kernels/gla/gla.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels {

using namespace gla_detail;

namespace {

struct ChunkPlan {
  int64_t C = 64;
  std::vector<int64_t> base;  // first chunk index of each sequence (N + 1 entries)
  int64_t chunks(int64_t len) const { return (len + C - 1) / C; }
};

ChunkPlan make_plan(const SequenceLayout& L, int64_t C) {
  ChunkPlan p;
  p.C = C;
  p.base.push_back(0);
  for (int64_t n = 0; n < L.N; ++n) p.base.push_back(p.base.back() + p.chunks(L.length(n)));
  return p;
}

// What the backward keeps from the forward: each chunk's incoming state [chunks, H, K, V] and
// scores [chunks, H, C, C].
struct Saved {
  Tensor states, scores;
};

template <typename T>
std::pair<Tensor, Tensor> forward(const Args& args, const ChunkPlan& plan, Saved* saved) {
  const SequenceLayout& L = args.L;
  const int64_t H = L.H, K = L.K, V = L.V, KV = K * V, C = plan.C, sK = H * K, sV = H * V;
  Tensor o = Tensor::empty({L.B, L.T, H, V}, args.q.dtype());
  Tensor F = Tensor::empty({L.N, H, K, V}, args.q.dtype());
  const int64_t total = plan.base.back();
  if (saved) {
    saved->states = Tensor::empty({total, H, K, V}, args.q.dtype());
    saved->scores = Tensor::empty({total, H, C, C}, args.q.dtype());
  }
  const T *q = args.q.data<T>(), *k = args.k.data<T>(), *v = args.v.data<T>(), *g = args.g.data<T>();
  const T* h0 = args.h0.defined() ? args.h0.data<T>() : nullptr;
  T *op = o.data<T>(), *Fp = F.data<T>();
  T* Sv = saved ? saved->states.data<T>() : nullptr;
  T* Av = saved ? saved->scores.data<T>() : nullptr;
  const T scale = static_cast<T>(args.scale);
  // Each thread walks a contiguous range of (sequence, head) pairs, balanced by chunk count.
  auto chunks_of = [&](int64_t pair) { return plan.chunks(L.length(pair / H)); };
  parallel_for_weighted(L.N * H, chunks_of, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    ChunkScratch<T> w(C, K, V);
    int64_t most = 0;
    for (int64_t pair = b; pair < e; ++pair) {
      T* S = Fp + pair * KV;  // the state lives in its final-state slot
      if (h0) std::copy(h0 + pair * KV, h0 + (pair + 1) * KV, S);
      else std::fill(S, S + KV, T(0));
      most = std::max(most, plan.chunks(L.length(pair / H)));
    }
    // Chunk by chunk over this thread's (sequence, head) pairs: neighbouring heads' rows are
    // neighbours in memory, so one chunk's rows stream in together.
    for (int64_t ci = 0; ci < most; ++ci)
      for (int64_t pair = b; pair < e; ++pair) {
        const int64_t n = pair / H, h = pair % H, len = L.length(n);
        if (ci >= plan.chunks(len)) continue;
        T* S = Fp + pair * KV;
        const int64_t r0 = L.offsets[n] + ci * C, m = std::min(C, len - ci * C);
        const int64_t ok = (r0 * H + h) * K, ov = (r0 * H + h) * V;
        w.prepare(q + ok, k + ok, g + ok, sK, m, scale);
        T* oc = op + ov;
        const T* vc = v + ov;
        gemm(Transpose::No, Transpose::No, m, V, K, T(1), w.Qg.data(), K, S, V, T(0), oc, sV);
        w.scores();
        for (int64_t I = 0, nsub = w.subchunks(); I < nsub; ++I) {
          const int64_t s0 = I * w.c, s1 = std::min(m, s0 + w.c);
          gemm(Transpose::No, Transpose::No, s1 - s0, V, s1, T(1), w.A.data() + s0 * C, C, vc, sV, T(1),
               oc + s0 * sV, sV);
        }
        if (saved) {
          const int64_t slot = (plan.base[n] + ci) * H + h;
          std::copy(S, S + KV, Sv + slot * KV);
          std::copy(w.A.begin(), w.A.end(), Av + slot * C * C);
        }
        for (int64_t i = 0; i < K; ++i)
#pragma omp simd
          for (int64_t j = 0; j < V; ++j) S[i * V + j] *= w.alast[i];
        gemm(Transpose::Yes, Transpose::No, K, V, m, T(1), w.Kd.data(), K, vc, sV, T(1), S, V);
      }
  });
  return {o, F};
}

template <typename T>
Grads backward(const Args& args, const ChunkPlan& plan, const Saved& saved, const Tensor& d_o,
               const Tensor& d_final) {
  const SequenceLayout& L = args.L;
  const int64_t H = L.H, K = L.K, V = L.V, KV = K * V, C = plan.C, sK = H * K, sV = H * V;
  Grads gr;
  gr.dq = Tensor::empty(args.q.shape(), args.q.dtype());
  gr.dk = Tensor::empty(args.k.shape(), args.k.dtype());
  gr.dv = Tensor::empty(args.v.shape(), args.v.dtype());
  gr.dg = Tensor::empty(args.g.shape(), args.g.dtype());
  if (args.h0.defined()) gr.dh0 = Tensor::empty(args.h0.shape(), args.h0.dtype());
  const T *q = args.q.data<T>(), *k = args.k.data<T>(), *v = args.v.data<T>(), *g = args.g.data<T>();
  const T *Sv = saved.states.data<T>(), *Av = saved.scores.data<T>();
  const T* dop = d_o.data<T>();
  const T* dFp = d_final.defined() ? d_final.data<T>() : nullptr;
  T *dq = gr.dq.data<T>(), *dk = gr.dk.data<T>(), *dv = gr.dv.data<T>(), *dg = gr.dg.data<T>();
  T* dh0 = gr.dh0.defined() ? gr.dh0.data<T>() : nullptr;
  const T scale = static_cast<T>(args.scale);
  // Each thread walks a contiguous range of (sequence, head) pairs, balanced by chunk count.
  auto chunks_of = [&](int64_t pair) { return plan.chunks(L.length(pair / H)); };
  parallel_for_weighted(L.N * H, chunks_of, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    ChunkScratch<T> w(C, K, V);
    const size_t ck = static_cast<size_t>(C * K);
    std::vector<T> dS_all(static_cast<size_t>((e - b) * KV)), dA(static_cast<size_t>(C * C));
    std::vector<T> dQ(ck), dKd(ck), dqs(ck), dks(ck), dP(ck), tmp(ck), run(static_cast<size_t>(K)),
        E(static_cast<size_t>(K));
    int64_t most = 0;
    for (int64_t pair = b; pair < e; ++pair) {
      T* dS = dS_all.data() + (pair - b) * KV;  // the gradient of the state after the chunk
      if (dFp) std::copy(dFp + pair * KV, dFp + (pair + 1) * KV, dS);
      else std::fill(dS, dS + KV, T(0));
      most = std::max(most, plan.chunks(L.length(pair / H)));
    }
    // Chunks in reverse, each over this thread's pairs (as the forward).
    for (int64_t ci = most - 1; ci >= 0; --ci)
      for (int64_t pair = b; pair < e; ++pair) {
        const int64_t n = pair / H, h = pair % H, len = L.length(n);
        if (ci >= plan.chunks(len)) continue;
        T* dS = dS_all.data() + (pair - b) * KV;
        const int64_t r0 = L.offsets[n] + ci * C, m = std::min(C, len - ci * C);
        const int64_t ok = (r0 * H + h) * K, ov = (r0 * H + h) * V;
        const int64_t slot = (plan.base[n] + ci) * H + h;
        const T* S = Sv + slot * KV;
        const T* A = Av + slot * C * C;
        const T *vc = v + ov, *doc = dop + ov;
        T* dvc = dv + ov;
        w.prepare(q + ok, k + ok, g + ok, sK, m, scale);

        // dA = tril(do vᵀ); dv = Aᵀ do + Kd dS.
        gemm(Transpose::No, Transpose::Yes, m, m, V, T(1), doc, sV, vc, sV, T(0), dA.data(), C);
        for (int64_t i = 0; i < m; ++i) std::fill(dA.begin() + i * C + i + 1, dA.begin() + i * C + m, T(0));
        gemm(Transpose::Yes, Transpose::No, m, V, m, T(1), A, C, doc, sV, T(0), dvc, sV);
        gemm(Transpose::No, Transpose::No, m, V, K, T(1), w.Kd.data(), K, dS, V, T(1), dvc, sV);
        // Inter-chunk terms: dQg = do Sᵀ, dKd = v dSᵀ.
        gemm(Transpose::No, Transpose::Yes, m, K, V, T(1), doc, sV, S, V, T(0), dQ.data(), K);
        gemm(Transpose::No, Transpose::Yes, m, K, V, T(1), vc, sV, dS, V, T(0), dKd.data(), K);

        // Strictly-lower score gradients: sub-chunk pairs by GEMM, inside sub-chunks exactly.
        std::fill(dqs.begin(), dqs.end(), T(0));
        std::fill(dks.begin(), dks.end(), T(0));
        for (int64_t I = 0, nsub = w.subchunks(); I < nsub; ++I) {
          const int64_t s0 = I * w.c, s1 = std::min(m, s0 + w.c);
          if (I > 0) {
            w.build_kp(I);
            const T* dAI = dA.data() + s0 * C;
            gemm(Transpose::No, Transpose::No, s1 - s0, K, s0, T(1), dAI, C, w.kp.data(), K, T(0), tmp.data(), K);
            for (int64_t i = s0; i < s1; ++i)
#pragma omp simd
              for (int64_t d = 0; d < K; ++d) dqs[i * K + d] += tmp[(i - s0) * K + d] * w.elp[i * K + d];
            gemm(Transpose::Yes, Transpose::No, s0, K, s1 - s0, T(1), dAI, C, w.qh.data() + s0 * K, K, T(0),
                 tmp.data(), K);
            for (int64_t j = 0; j < s0; ++j)
#pragma omp simd
              for (int64_t d = 0; d < K; ++d) dks[j * K + d] += tmp[j * K + d] * w.fp[j * K + d];
          }
          for (int64_t i = s0 + 1; i < s1; ++i) {
            const T* qi = w.qs.data() + i * K;
            T* dqi = dqs.data() + i * K;
            std::copy(w.a.begin() + i * K, w.a.begin() + (i + 1) * K, E.begin());  // Π_{s=j+1..i} a_s
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

        // dP (gradient of the prefix exponents) and the full dq, dk.
        for (int64_t i = 0; i < m; ++i) {
          const T dAii = dA[i * C + i];
          const T *qi = w.qs.data() + i * K, *ki = w.kc.data() + i * K;
          T *dqo = dq + ok + i * sK, *dko = dk + ok + i * sK;
#pragma omp simd
          for (int64_t d = 0; d < K; ++d) {
            const int64_t x = i * K + d;
            dP[x] = w.Qg[x] * dQ[x] + qi[d] * dqs[x] - ki[d] * dks[x];
            dqo[d] = scale * (dQ[x] * w.eP[x] + dqs[x] + dAii * ki[d]);
            dko[d] = dKd[x] * w.eR[x] + dks[x] + dAii * qi[d];
          }
        }
        for (int64_t i = 0; i < K; ++i)
          dP[(m - 1) * K + i] += w.alast[i] * dot(dS + i * V, S + i * V, V);
        // dg_s = Σ_{i≥s} dP_i + Σ_{j<s} dR_j, dR_j = Kd_j ⊙ dKd_j.
        std::fill(run.begin(), run.end(), T(0));
        for (int64_t i = m - 1; i >= 0; --i)
#pragma omp simd
          for (int64_t d = 0; d < K; ++d) {
            run[d] += dP[i * K + d];
            dP[i * K + d] = run[d];
          }
        std::fill(run.begin(), run.end(), T(0));
        for (int64_t i = 0; i < m; ++i) {
          T* dgo = dg + ok + i * sK;
#pragma omp simd
          for (int64_t d = 0; d < K; ++d) {
            dgo[d] = dP[i * K + d] + run[d];
            run[d] += w.Kd[i * K + d] * dKd[i * K + d];
          }
        }
        // dS ← Diag(a_last) dS + Qgᵀ do.
        for (int64_t i = 0; i < K; ++i)
#pragma omp simd
          for (int64_t j = 0; j < V; ++j) dS[i * V + j] *= w.alast[i];
        gemm(Transpose::Yes, Transpose::No, K, V, m, T(1), w.Qg.data(), K, doc, sV, T(1), dS, V);
      }
    if (dh0) std::copy(dS_all.begin(), dS_all.end(), dh0 + b * KV);
  });
  return gr;
}

}  // namespace

MechanismOutputs gla_chunk(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "gla_chunk";
  check_chunk_size(op, opt.chunk_size);
  Args args = parse_args(op, in, opt);
  const ChunkPlan plan = make_plan(args.L, opt.chunk_size);
  auto saved = std::make_shared<Saved>();
  const bool grad = wants_grad(in);
  auto [o, F] = dispatch_float(args.q.dtype(), op, [&]<typename T>() {
    return forward<T>(args, plan, grad ? saved.get() : nullptr);
  });
  return run_and_record(op, in, args, o, F, [args, plan, saved](const Tensor& d_o, const Tensor& d_final) {
    return dispatch_float(args.q.dtype(), "gla_chunk_backward",
                          [&]<typename T>() { return backward<T>(args, plan, *saved, d_o, d_final); });
  });
}

}  // namespace lnx::kernels
