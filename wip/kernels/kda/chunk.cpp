// The chunk form of kda: the WY / UT transform of common/wy_transform.h with a gate per key
// dimension. With b_i = Σ_{m≤i} g_m ∈ R^K the chunk-local cumulative log gates, E_i = exp(b_i)
// and El_i = exp(b_L − b_i) (elementwise, ≤ 1):
//   M_ij = Σ_d k_id k_jd exp(b_id − b_jd) (j < i),  A = diag(β) M,  T = (I + A)⁻¹
//   P_ij = Σ_d q̃_id k_jd exp(b_id − b_jd) (j ≤ i)            (q̃ = scale·q)
//   W = T diag(β) (K ⊙ E),  U = T diag(β) V − W S0
//   O = (Q̃ ⊙ E) S0 + P U,   S_L = Diag(E_L) S0 + (K ⊙ El)ᵀ U
// M and P need exp of per-dimension differences: inside sub-blocks of kSub rows they are formed
// pair by pair; a sub-block starting at row r against the rows j < r before it is a GEMM of
// x_i ⊙ exp(b_i − b_r) with y_j ⊙ exp(b_r − b_j), both factors ≤ 1. Only differences b_i − b_j
// with j ≤ i are exponentiated, so the form stays finite for gates far below zero.
// The backward runs over the chunks in reverse carrying dS, from S0, W, U, T, M, P saved by
// the forward.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/common/delta_family.h"
#include "kernels/kda/kda.h"
#include "tensor/cpu/blas.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"
#include "kernels/common/chunk_helpers.h"

namespace lnx::kernels {

namespace {

constexpr int64_t kSub = 16;  // sub-block of a chunk whose inner pairs are formed directly

template <typename T>
struct Work {
  int64_t C, K, V;
  std::vector<double> b, db;                                         // C×K
  std::vector<T> E, El, e, diff;                                     // C×K, C×K, K, K
  std::vector<T> A, dP, dT, dA, tmp;                                 // C×C
  std::vector<T> kb, qs, qe, kl, dK, dQ, dW, dKb, X, dQp, dKr, dKc;  // C×K
  std::vector<T> vb, dU, dVb;                                        // C×V
  // Sub-block factors (see block_factors): fx, xk, xq rows of the block, fy, Y rows before it.
  std::vector<T> fx, xk, xq, fy, Y, tq, tk, tY, c2m;
  std::vector<T> scratch;
  T *W = nullptr, *U = nullptr, *Tm = nullptr, *M = nullptr, *P = nullptr;
  Work(int64_t C_, int64_t K_, int64_t V_) : C(C_), K(K_), V(V_) {
    b.resize(C * K), db.resize(C * K), E.resize(C * K), El.resize(C * K), e.resize(K),
        diff.resize(K);
    for (auto* m : {&A, &dP, &dT, &dA, &tmp}) m->resize(C * C);
    for (auto* m : {&kb, &qs, &qe, &kl, &dK, &dQ, &dW, &dKb, &X, &dQp, &dKr, &dKc})
      m->resize(C * K);
    for (auto* m : {&vb, &dU, &dVb}) m->resize(C * V);
    for (auto* m : {&fx, &xk, &xq, &fy, &Y, &tq, &tk, &tY}) m->resize(C * K);
    c2m.resize(C * C);
    scratch.resize(block_size(C, K, V));
  }
  static int64_t block_size(int64_t C, int64_t K, int64_t V) {
    return K * V + C * K + C * V + 3 * C * C;
  }
  // Block layout: [S0: K·V][W: C·K][U: C·V][T: C²][M: C²][P: C²].
  T* use_block(T* blk) {
    W = blk + K * V, U = W + C * K, Tm = U + C * V, M = Tm + C * C, P = M + C * C;
    return blk;
  }
  // out ← exp(b_i − b_j) over the key dimension.
  void pair_decay(int64_t i, int64_t j, T* out) {
    const double *bi = b.data() + i * K, *bj = b.data() + j * K;
    for (int64_t d = 0; d < K; ++d) diff[d] = static_cast<T>(bi[d] - bj[d]);
    for (int64_t d = 0; d < K; ++d) out[d] = fast_exp(diff[d]);
  }
  void pair_decay(int64_t i, int64_t j) { pair_decay(i, j, e.data()); }
  // For the rows i ∈ [r, r1) of a sub-block and the rows j < r before it, the decay factors as
  // exp(b_i − b_j) = exp(b_i − b_r) · exp(b_r − b_j), both factors ≤ 1 (b only decreases), so
  // the off-block pairs are GEMMs of xk = k ⊙ fx, xq = q̃ ⊙ fx against Y = k ⊙ fy.
  void block_factors(const T* k, int64_t ldk, int64_t r, int64_t r1) {
    for (int64_t i = r; i < r1; ++i) {
      pair_decay(i, r, fx.data() + i * K);
      for (int64_t d = 0; d < K; ++d) {
        xk[i * K + d] = k[i * ldk + d] * fx[i * K + d];
        xq[i * K + d] = qs[i * K + d] * fx[i * K + d];
      }
    }
    for (int64_t j = 0; j < r; ++j) {
      pair_decay(r, j, fy.data() + j * K);
      for (int64_t d = 0; d < K; ++d) Y[j * K + d] = k[j * ldk + d] * fy[j * K + d];
    }
  }
};

template <typename T>
struct ChunkIn {
  const T *q, *k, *v, *beta, *g;
  int64_t ldk, ldv, ldh, Lc;
};

template <typename T>
ChunkIn<T> chunk_in(const DeltaArgs& a, int64_t row0, int64_t h, int64_t Lc) {
  const int64_t H = a.L.H, K = a.L.K, V = a.L.V, r = row0 * H + h;
  return {a.q.data<T>() + r * K,
          a.k.data<T>() + r * K,
          a.v.data<T>() + r * V,
          a.beta.data<T>() + r,
          a.g.data<T>() + r * K,
          H * K,
          H * V,
          H,
          Lc};
}

// Gates b, E, El and the row-scaled matrices diag(β)(K ⊙ E), diag(β) V, Q̃, Q̃ ⊙ E, K ⊙ El.
template <typename T>
void row_terms(Work<T>& w, const ChunkIn<T>& c, T scale) {
  const int64_t K = w.K, V = w.V, Lc = c.Lc;
  for (int64_t i = 0; i < Lc; ++i)
    for (int64_t d = 0; d < K; ++d)
      w.b[i * K + d] = (i ? w.b[(i - 1) * K + d] : 0.0) + static_cast<double>(c.g[i * c.ldk + d]);
  const double* bL = w.b.data() + (Lc - 1) * K;
  for (int64_t i = 0; i < Lc; ++i) {
    const T bi = c.beta[i * c.ldh];
    const T *ki = c.k + i * c.ldk, *qi = c.q + i * c.ldk, *vi = c.v + i * c.ldv;
    T *Ei = w.E.data() + i * K, *Eli = w.El.data() + i * K;
    const double* bi_ = w.b.data() + i * K;
    for (int64_t d = 0; d < K; ++d) Ei[d] = static_cast<T>(bi_[d]);
    for (int64_t d = 0; d < K; ++d) Eli[d] = static_cast<T>(bL[d] - bi_[d]);
    for (int64_t d = 0; d < K; ++d) Ei[d] = fast_exp(Ei[d]);
    for (int64_t d = 0; d < K; ++d) Eli[d] = fast_exp(Eli[d]);
    T* __restrict kb = w.kb.data() + i * K;
    T* __restrict qs = w.qs.data() + i * K;
    T* __restrict qe = w.qe.data() + i * K;
    T* __restrict kl = w.kl.data() + i * K;
#pragma omp simd
    for (int64_t d = 0; d < K; ++d) {
      kb[d] = bi * Ei[d] * ki[d];
      qs[d] = scale * qi[d];
      qe[d] = scale * qi[d] * Ei[d];
      kl[d] = Eli[d] * ki[d];
    }
    for (int64_t d = 0; d < V; ++d) w.vb[i * V + d] = bi * vi[d];
  }
}

template <typename T>
void fill_A(Work<T>& w, const ChunkIn<T>& c) {
  const int64_t C = w.C, Lc = c.Lc;
  for (int64_t i = 0; i < Lc; ++i) {
    const T bi = c.beta[i * c.ldh];
    for (int64_t j = 0; j < Lc; ++j) w.A[i * C + j] = j < i ? bi * w.M[i * C + j] : T(0);
  }
}

// M, P (pair by pair), A, T = (I + A)⁻¹, W and U.
template <typename T>
void solve(Work<T>& w, const ChunkIn<T>& c, const T* S0) {
  const int64_t C = w.C, K = w.K, V = w.V, Lc = c.Lc;
  for (int64_t r = 0; r < Lc; r += kSub) {  // off-block pairs by GEMM
    const int64_t r1 = std::min(Lc, r + kSub);
    if (r == 0) continue;
    w.block_factors(c.k, c.ldk, r, r1);
    mm<T>(false, true, r1 - r, r, K, T(1), w.xk.data() + r * K, K, w.Y.data(), K, T(0), w.M + r * C,
          C);
    mm<T>(false, true, r1 - r, r, K, T(1), w.xq.data() + r * K, K, w.Y.data(), K, T(0), w.P + r * C,
          C);
  }
  for (int64_t i = 0; i < Lc; ++i) {  // pairs inside a sub-block directly
    const T* ki = c.k + i * c.ldk;
    const T* qi = w.qs.data() + i * K;
    T *Mi = w.M + i * C, *Pi = w.P + i * C;
    for (int64_t j = i / kSub * kSub; j <= i; ++j) {
      w.pair_decay(i, j);
      const T* kj = c.k + j * c.ldk;
      T m = 0, p = 0;
#pragma omp simd reduction(+ : m, p)
      for (int64_t d = 0; d < K; ++d) {
        const T x = kj[d] * w.e[d];
        m += ki[d] * x;
        p += qi[d] * x;
      }
      Mi[j] = j < i ? m : T(0);
      Pi[j] = p;
    }
    for (int64_t j = i + 1; j < Lc; ++j) Mi[j] = Pi[j] = T(0);
  }
  fill_A(w, c);
  for (int64_t i = 0; i < Lc; ++i) {  // forward substitution: T_i = e_i − Σ_{m<i} A_im T_m
    T* ti = w.Tm + i * C;
    for (int64_t j = 0; j < Lc; ++j) ti[j] = T(0);
    for (int64_t m = 0; m < i; ++m) {
      const T coef = -w.A[i * C + m];
      const T* tm = w.Tm + m * C;
#pragma omp simd
      for (int64_t j = 0; j <= m; ++j) ti[j] += coef * tm[j];
    }
    ti[i] = T(1);
  }
  mm<T>(false, false, Lc, K, Lc, T(1), w.Tm, C, w.kb.data(), K, T(0), w.W, K);
  mm<T>(false, false, Lc, V, Lc, T(1), w.Tm, C, w.vb.data(), V, T(0), w.U, V);
  mm<T>(false, false, Lc, V, K, T(-1), w.W, K, S0, V, T(1), w.U, V);
}

template <typename T>
Tensor forward_impl(const DeltaArgs& a, int64_t C, Tensor& o, Tensor& fin, bool keep) {
  const SequenceLayout& L = a.L;
  const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
  const DType dt = a.q.dtype();
  o = Tensor::empty({L.B, L.T, H, V}, dt);
  fin = Tensor::empty({L.N, H, K, V}, dt);
  const std::vector<int64_t> cc = chunk_offsets(L, C);
  const int64_t BS = Work<T>::block_size(C, K, V);
  Tensor saved = keep ? Tensor::empty({cc[L.N], H, BS}, dt) : Tensor();
  T* op = o.data<T>();
  T* fp = fin.data<T>();
  T* sp = keep ? saved.data<T>() : nullptr;
  const T* h0 = a.h0.defined() ? a.h0.data<T>() : nullptr;
  const T scale = static_cast<T>(a.scale);
  parallel_for(L.N * H, 1, [&](int64_t begin, int64_t end) {
    Work<T> w(C, K, V);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n = p / H, h = p % H, len = L.length(n);
      T* S = fp + p * KV;
      if (h0)
        std::memcpy(S, h0 + p * KV, KV * sizeof(T));
      else
        std::fill(S, S + KV, T(0));
      for (int64_t c = 0; c * C < len; ++c) {
        const int64_t t0 = c * C, Lc = std::min(C, len - t0);
        T* blk = w.use_block(sp ? sp + ((cc[n] + c) * H + h) * BS : w.scratch.data());
        if (sp) std::memcpy(blk, S, KV * sizeof(T));
        const ChunkIn<T> in = chunk_in<T>(a, L.offsets[n] + t0, h, Lc);
        row_terms(w, in, scale);
        solve(w, in, S);
        T* oc = op + ((L.offsets[n] + t0) * H + h) * V;
        mm<T>(false, false, Lc, V, K, T(1), w.qe.data(), K, S, V, T(0), oc, in.ldv);
        mm<T>(false, false, Lc, V, Lc, T(1), w.P, C, w.U, V, T(1), oc, in.ldv);
        const T* EL = w.E.data() + (Lc - 1) * K;
        for (int64_t i = 0; i < K; ++i)
          for (int64_t d = 0; d < V; ++d) S[i * V + d] *= EL[i];
        mm<T>(true, false, K, V, Lc, T(1), w.kl.data(), K, w.U, V, T(1), S, V);
      }
    }
  });
  return saved;
}

template <typename T>
DeltaGrads backward_impl(const DeltaArgs& a, int64_t C, const Tensor& saved, const Tensor& d_o,
                         const Tensor& d_final) {
  const SequenceLayout& L = a.L;
  const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
  // Every token row of every sequence is written below: no zero fill.
  auto like = [](const Tensor& t) { return Tensor::empty(t.shape(), t.dtype()); };
  DeltaGrads gr;
  gr.dq = like(a.q), gr.dk = like(a.k), gr.dv = like(a.v);
  gr.dbeta = like(a.beta), gr.dg = like(a.g);
  gr.dh0 = a.h0.defined() ? Tensor::empty({L.N, H, K, V}, a.q.dtype()) : Tensor();
  const std::vector<int64_t> cc = chunk_offsets(L, C);
  const int64_t BS = Work<T>::block_size(C, K, V);
  T* sp = const_cast<T*>(saved.data<T>());  // read only
  const T* dop = d_o.data<T>();
  const T* dfp = d_final.defined() ? d_final.data<T>() : nullptr;
  T *dq = gr.dq.data<T>(), *dk = gr.dk.data<T>(), *dv = gr.dv.data<T>(), *dbp = gr.dbeta.data<T>();
  T* dg = gr.dg.data<T>();
  T* dh0 = a.h0.defined() ? gr.dh0.data<T>() : nullptr;
  const T scale = static_cast<T>(a.scale);
  parallel_for(L.N * H, 1, [&](int64_t begin, int64_t end) {
    Work<T> w(C, K, V);
    std::vector<T> dS(KV), dSn(KV), dbeta(C);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t n = p / H, h = p % H, len = L.length(n);
      if (dfp)
        std::memcpy(dS.data(), dfp + p * KV, KV * sizeof(T));
      else
        std::fill(dS.begin(), dS.end(), T(0));
      for (int64_t c = (len + C - 1) / C - 1; c >= 0; --c) {
        const int64_t t0 = c * C, Lc = std::min(C, len - t0);
        const int64_t r0 = (L.offsets[n] + t0) * H + h;
        const T* S0 = w.use_block(sp + ((cc[n] + c) * H + h) * BS);
        const ChunkIn<T> in = chunk_in<T>(a, L.offsets[n] + t0, h, Lc);
        row_terms(w, in, scale);
        fill_A(w, in);
        const T* dO = dop + r0 * V;
        const int64_t ldv = in.ldv, ldk = in.ldk;
        std::fill(w.db.begin(), w.db.end(), 0.0);
        // dU = Pᵀ dO + (K ⊙ El) dS;  dS0 = Diag(E_L) dS + (Q̃ ⊙ E)ᵀ dO − Wᵀ dU
        mm<T>(true, false, Lc, V, Lc, T(1), w.P, C, dO, ldv, T(0), w.dU.data(), V);
        mm<T>(false, false, Lc, V, K, T(1), w.kl.data(), K, dS.data(), V, T(1), w.dU.data(), V);
        const T* EL = w.E.data() + (Lc - 1) * K;
        double* dbL = w.db.data() + (Lc - 1) * K;
        for (int64_t i = 0; i < K; ++i) {
          dbL[i] += static_cast<double>(EL[i]) * dot(S0 + i * V, dS.data() + i * V, V);
          for (int64_t d = 0; d < V; ++d) dSn[i * V + d] = EL[i] * dS[i * V + d];
        }
        mm<T>(true, false, K, V, Lc, T(1), w.qe.data(), K, dO, ldv, T(1), dSn.data(), V);
        mm<T>(true, false, K, V, Lc, T(-1), w.W, K, w.dU.data(), V, T(1), dSn.data(), V);
        // S_L's (K ⊙ El)ᵀ U term.
        mm<T>(false, true, Lc, K, V, T(1), w.U, V, dS.data(), V, T(0), w.dK.data(), K);
        for (int64_t j = 0; j < Lc; ++j)
          for (int64_t d = 0; d < K; ++d) {
            const T x = w.dK[j * K + d] * w.El[j * K + d];
            const double z = static_cast<double>(x) * static_cast<double>(in.k[j * ldk + d]);
            dbL[d] += z;
            w.db[j * K + d] -= z;
            w.dK[j * K + d] = x;
          }
        // O's (Q̃ ⊙ E) S0 term.
        mm<T>(false, true, Lc, K, V, T(1), dO, ldv, S0, V, T(0), w.X.data(), K);
        for (int64_t e = 0; e < Lc * K; ++e) {
          w.dQ[e] = w.E[e] * w.X[e];
          w.db[e] += static_cast<double>(w.qe[e]) * static_cast<double>(w.X[e]);
        }
        // dP = dO Uᵀ; U = T diag(β) V − W S0; W = T diag(β)(K ⊙ E).
        mm<T>(false, true, Lc, Lc, V, T(1), dO, ldv, w.U, V, T(0), w.dP.data(), C);
        mm<T>(false, true, Lc, K, V, T(-1), w.dU.data(), V, S0, V, T(0), w.dW.data(), K);
        mm<T>(true, false, Lc, V, Lc, T(1), w.Tm, C, w.dU.data(), V, T(0), w.dVb.data(), V);
        mm<T>(true, false, Lc, K, Lc, T(1), w.Tm, C, w.dW.data(), K, T(0), w.dKb.data(), K);
        for (int64_t i = 0; i < Lc; ++i) {
          const T bi = in.beta[i * in.ldh];
          const T *vi = in.v + i * ldv, *ki = in.k + i * ldk;
          const T *dVbi = w.dVb.data() + i * V, *dKbi = w.dKb.data() + i * K,
                  *Ei = w.E.data() + i * K;
          for (int64_t d = 0; d < V; ++d) dv[r0 * V + i * ldv + d] = bi * dVbi[d];
          T ysum = 0;
          for (int64_t d = 0; d < K; ++d) {
            const T y = Ei[d] * ki[d] * dKbi[d];
            ysum += y;
            w.db[i * K + d] += static_cast<double>(bi) * static_cast<double>(y);
            w.dK[i * K + d] += bi * Ei[d] * dKbi[d];
          }
          dbeta[i] = dot(vi, dVbi, V) + ysum;
        }
        // dT = dU (diag(β)V)ᵀ + dW (diag(β)(K ⊙ E))ᵀ;  dA = −Tᵀ dT Tᵀ.
        mm<T>(false, true, Lc, Lc, V, T(1), w.dU.data(), V, w.vb.data(), V, T(0), w.dT.data(), C);
        mm<T>(false, true, Lc, Lc, K, T(1), w.dW.data(), K, w.kb.data(), K, T(1), w.dT.data(), C);
        mm<T>(true, false, Lc, Lc, Lc, T(1), w.Tm, C, w.dT.data(), C, T(0), w.tmp.data(), C);
        mm<T>(false, true, Lc, Lc, Lc, T(-1), w.tmp.data(), C, w.Tm, C, T(0), w.dA.data(), C);
        // Pairs (i, j ≤ i): P_ij (weight c1 = dP_ij) and A_ij = β_i M_ij (c2 = β_i dA_ij, j < i).
        // Each term is x_i · y_j ⊙ exp(b_i − b_j) summed over d, so its gradient in b_i is
        // x_i ⊙ dx_i and in b_j is −y_j ⊙ dy_j: the pair loop gathers only dx (dQp: x = q̃,
        // dKr: x = k) and dy (dKc: y = k), and db follows per element afterwards. The diagonal
        // P_ii does not depend on the gates and goes straight to dQ, dK (kept out of the db sums,
        // where it would cancel in rounding against terms that may be far smaller).
        std::fill(w.dQp.begin(), w.dQp.end(), T(0));
        std::fill(w.dKr.begin(), w.dKr.end(), T(0));
        std::fill(w.dKc.begin(), w.dKc.end(), T(0));
        for (int64_t i = 0; i < Lc; ++i) {
          T dbe = 0;
          for (int64_t j = 0; j < i; ++j) dbe += w.dA[i * C + j] * w.M[i * C + j];
          dbeta[i] += dbe;
        }
        for (int64_t r = kSub; r < Lc; r += kSub) {  // off-block pairs by GEMM
          const int64_t r1 = std::min(Lc, r + kSub), nr = r1 - r;
          w.block_factors(in.k, ldk, r, r1);
          for (int64_t i = r; i < r1; ++i) {
            const T bi = in.beta[i * in.ldh];
            for (int64_t j = 0; j < r; ++j) w.c2m[(i - r) * C + j] = bi * w.dA[i * C + j];
          }
          const T* c1m = w.dP.data() + r * C;
          mm<T>(false, false, nr, K, r, T(1), c1m, C, w.Y.data(), K, T(0), w.tq.data(), K);
          mm<T>(false, false, nr, K, r, T(1), w.c2m.data(), C, w.Y.data(), K, T(0), w.tk.data(), K);
          mm<T>(true, false, r, K, nr, T(1), c1m, C, w.xq.data() + r * K, K, T(0), w.tY.data(), K);
          mm<T>(true, false, r, K, nr, T(1), w.c2m.data(), C, w.xk.data() + r * K, K, T(1),
                w.tY.data(), K);
          for (int64_t i = r; i < r1; ++i)
            for (int64_t d = 0; d < K; ++d) {
              w.dQp[i * K + d] += w.tq[(i - r) * K + d] * w.fx[i * K + d];
              w.dKr[i * K + d] += w.tk[(i - r) * K + d] * w.fx[i * K + d];
            }
          for (int64_t j = 0; j < r; ++j)
            for (int64_t d = 0; d < K; ++d) w.dKc[j * K + d] += w.tY[j * K + d] * w.fy[j * K + d];
        }
        for (int64_t i = 0; i < Lc; ++i) {  // pairs inside a sub-block directly
          const T bi = in.beta[i * in.ldh];
          const T *ki = in.k + i * ldk, *qi = w.qs.data() + i * K;
          T *dQi = w.dQp.data() + i * K, *dKi = w.dKr.data() + i * K;
          const T cd = w.dP[i * C + i];
          for (int64_t d = 0; d < K; ++d) {
            w.dQ[i * K + d] += cd * ki[d];
            w.dK[i * K + d] += cd * qi[d];
          }
          for (int64_t j = i / kSub * kSub; j < i; ++j) {
            const T c1 = w.dP[i * C + j], c2 = bi * w.dA[i * C + j];
            w.pair_decay(i, j);
            const T* kj = in.k + j * ldk;
            T* dKj = w.dKc.data() + j * K;
#pragma omp simd
            for (int64_t d = 0; d < K; ++d) {
              const T ed = w.e[d], kje = kj[d] * ed;
              dQi[d] += c1 * kje;
              dKi[d] += c2 * kje;
              dKj[d] += (c1 * qi[d] + c2 * ki[d]) * ed;
            }
          }
        }
        for (int64_t i = 0; i < Lc; ++i)
          for (int64_t d = 0; d < K; ++d) {
            const int64_t e = i * K + d;
            const T kid = in.k[i * ldk + d];
            w.db[e] += static_cast<double>(w.qs[e] * w.dQp[e]) +
                       static_cast<double>(kid * (w.dKr[e] - w.dKc[e]));
            w.dQ[e] += w.dQp[e];
            w.dK[e] += w.dKr[e] + w.dKc[e];
          }
        for (int64_t i = 0; i < Lc; ++i) {
          for (int64_t d = 0; d < K; ++d) {
            dq[r0 * K + i * ldk + d] = scale * w.dQ[i * K + d];
            dk[r0 * K + i * ldk + d] = w.dK[i * K + d];
          }
          dbp[r0 + i * H] = dbeta[i];
        }
        for (int64_t d = 0; d < K; ++d) {  // dg = reverse cumulative sum of db
          double acc = 0;
          for (int64_t i = Lc - 1; i >= 0; --i) {
            acc += w.db[i * K + d];
            dg[r0 * K + i * ldk + d] = static_cast<T>(acc);
          }
        }
        std::swap(dS, dSn);
      }
      if (dh0) std::memcpy(dh0 + p * KV, dS.data(), KV * sizeof(T));
    }
  });
  return gr;
}

DeltaKernel kda_chunk_kernel(int64_t C) {
  DeltaKernel kern;
  kern.forward = [C](const DeltaArgs& a, Tensor& o, Tensor& fin, bool keep) {
    return dispatch_float(a.q.dtype(), a.op,
                          [&]<typename T>() { return forward_impl<T>(a, C, o, fin, keep); });
  };
  kern.backward = [C](const DeltaArgs& a, const Tensor& saved, const Tensor& d_o,
                      const Tensor& d_final) {
    return dispatch_float(a.q.dtype(), a.op, [&]<typename T>() {
      return backward_impl<T>(a, C, saved, d_o, d_final);
    });
  };
  return kern;
}

}  // namespace

MechanismOutputs kda_chunk(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "kda_chunk";
  check_chunk_size(op, opt.chunk_size);
  DeltaArgs a = delta_args(op, in, opt, DeltaGate::per_key);
  return run_delta_kernel(a, opt, kda_chunk_kernel(opt.chunk_size));
}

}  // namespace lnx::kernels
