#include "kernels/common/wy_transform.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/cpu/blas.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"
#include "kernels/common/chunk_helpers.h"

namespace lnx::kernels {

namespace {

// Per-thread scratch for one chunk (leading dimension C for L×L, K or V for L×K / L×V).
template <typename T>
struct Work {
  int64_t C, K, V;
  std::vector<double> b, db;
  std::vector<T> eb, ebl, A, dP, dT, dA, tmp;
  std::vector<T> kb, qs, kd, dK, dQ, dKb;
  std::vector<T> vb, dVb;
  // Backward stacks: G2 = [dO; dU] (2C×V), L2 = [diag(e^b) Q̃; −W] and X2 = G2 S0ᵀ (2C×K), so
  // that products sharing an operand run as one GEMM.
  std::vector<T> G2, L2, X2;
  std::vector<T> diff;
  // K Kᵀ, T, W, U and P: in the saved block of the chunk when the backward will need them
  // (Block below), else in the scratch block.
  std::vector<T> scratch;
  T *kk = nullptr, *Tm = nullptr, *W = nullptr, *U = nullptr, *P = nullptr, *gam = nullptr;
  Work(int64_t C_, int64_t K_, int64_t V_) : C(C_), K(K_), V(V_) {
    b.resize(C), db.resize(C), eb.resize(C), ebl.resize(C), diff.resize(C);
    for (auto* m : {&A, &dP, &dT, &dA, &tmp}) m->resize(C * C);
    for (auto* m : {&kb, &qs, &kd, &dK, &dQ, &dKb}) m->resize(C * K);
    for (auto* m : {&vb, &dVb}) m->resize(C * V);
    G2.resize(2 * C * V), L2.resize(2 * C * K), X2.resize(2 * C * K);
    scratch.resize(block_size(C, K, V));
  }
  static int64_t block_size(int64_t C, int64_t K, int64_t V) {
    return K * V + C * K + C * V + 4 * C * C;
  }
  // Points the matrices into a block laid out
  // [S0: K·V][W: C·K][U: C·V][T: C²][(K Kᵀ) ⊙ Γ: C²][P: C²][Γ: C²].
  T* use_block(T* blk) {
    W = blk + K * V, U = W + C * K, Tm = U + C * V, kk = Tm + C * C, P = kk + C * C,
    gam = P + C * C;
    return blk;
  }
};

// Pointers of one chunk of one (sequence, head): rows are tokens, strides H·K / H·V / H.
template <typename T>
struct ChunkIn {
  const T *q, *k, *v, *beta, *g;  // g null without gates
  int64_t ldk, ldv, ldh, Lc;
};

// Row terms: gates b, e^b, e^{b_L − b}, Γ (if gammas); diag(βe^b) K, diag(β) V, scale·Q,
// diag(e^{b_L − b}) K.
template <typename T>
void row_terms(Work<T>& w, const ChunkIn<T>& c, T scale, bool gammas) {
  const int64_t C = w.C, K = w.K, V = w.V, Lc = c.Lc;
  double acc = 0;
  for (int64_t i = 0; i < Lc; ++i) {
    acc += c.g ? static_cast<double>(c.g[i * c.ldh]) : 0.0;
    w.b[i] = acc;
  }
  for (int64_t i = 0; i < Lc; ++i) {
    w.eb[i] = static_cast<T>(std::exp(w.b[i]));
    w.ebl[i] = static_cast<T>(std::exp(w.b[Lc - 1] - w.b[i]));
  }
  for (int64_t i = 0; i < Lc && gammas; ++i) {
    T* gi = w.gam + i * C;
    if (c.g) {
      for (int64_t j = 0; j <= i; ++j) w.diff[j] = static_cast<T>(w.b[i] - w.b[j]);
      for (int64_t j = 0; j <= i; ++j) gi[j] = fast_exp(w.diff[j]);
    } else {
      for (int64_t j = 0; j <= i; ++j) gi[j] = T(1);
    }
    for (int64_t j = i + 1; j < Lc; ++j) gi[j] = T(0);
  }
  for (int64_t i = 0; i < Lc; ++i) {
    const T bi = c.beta[i * c.ldh], s = bi * w.eb[i];
    const T *ki = c.k + i * c.ldk, *vi = c.v + i * c.ldv, *qi = c.q + i * c.ldk;
    T *kbi = w.kb.data() + i * K, *vbi = w.vb.data() + i * V, *qsi = w.qs.data() + i * K;
    T* kdi = w.kd.data() + i * K;
    for (int64_t d = 0; d < K; ++d) kbi[d] = s * ki[d];
    for (int64_t d = 0; d < V; ++d) vbi[d] = bi * vi[d];
    for (int64_t d = 0; d < K; ++d) qsi[d] = scale * qi[d];
    for (int64_t d = 0; d < K; ++d) kdi[d] = w.ebl[i] * ki[d];
  }
}

// A = strictLower(diag(β) K Kᵀ ⊙ Γ) from w.kk = (K Kᵀ) ⊙ Γ.
template <typename T>
void fill_A(Work<T>& w, const ChunkIn<T>& c) {
  const int64_t C = w.C, Lc = c.Lc;
  for (int64_t i = 0; i < Lc; ++i) {
    const T bi = c.beta[i * c.ldh];
    T* Ai = w.A.data() + i * C;
    const T* kki = w.kk + i * C;
    for (int64_t j = 0; j < i; ++j) Ai[j] = bi * kki[j];
    for (int64_t j = i; j < Lc; ++j) Ai[j] = T(0);
  }
}

// After row_terms: K Kᵀ, A, T = (I + A)⁻¹, W, U = T diag(β) V − W S0 and
// P = (scale Q Kᵀ) ⊙ Γ ⊙ M, into w.kk, w.Tm, w.W, w.U, w.P.
template <typename T>
void solve(Work<T>& w, const ChunkIn<T>& c, const T* S0) {
  const int64_t C = w.C, K = w.K, V = w.V, Lc = c.Lc;
  mm<T>(false, true, Lc, Lc, K, T(1), c.k, c.ldk, c.k, c.ldk, T(0), w.kk, C);
  if (c.g)
    for (int64_t i = 0; i < Lc; ++i)
      for (int64_t j = 0; j <= i; ++j) w.kk[i * C + j] *= w.gam[i * C + j];
  fill_A(w, c);
  // Forward substitution, row by row: T_i = e_i − Σ_{m<i} A_im T_m.
  for (int64_t i = 0; i < Lc; ++i) {
    T* ti = w.Tm + i * C;
    for (int64_t j = 0; j < Lc; ++j) ti[j] = T(0);
    const T* Ai = w.A.data() + i * C;
    for (int64_t m = 0; m < i; ++m) {
      const T coef = -Ai[m];
      const T* tm = w.Tm + m * C;
#pragma omp simd
      for (int64_t j = 0; j <= m; ++j) ti[j] += coef * tm[j];
    }
    ti[i] = T(1);
  }
  mm<T>(false, false, Lc, K, Lc, T(1), w.Tm, C, w.kb.data(), K, T(0), w.W, K);
  mm<T>(false, false, Lc, V, Lc, T(1), w.Tm, C, w.vb.data(), V, T(0), w.U, V);
  mm<T>(false, false, Lc, V, K, T(-1), w.W, K, S0, V, T(1), w.U, V);
  mm<T>(false, true, Lc, Lc, K, T(1), w.qs.data(), K, c.k, c.ldk, T(0), w.P, C);
  for (int64_t i = 0; i < Lc; ++i) {
    T* Pi = w.P + i * C;
    const T* gi = w.gam + i * C;
    for (int64_t j = 0; j < Lc; ++j) Pi[j] *= gi[j];
  }
}

template <typename T>
ChunkIn<T> chunk_in(const DeltaArgs& a, int64_t row0, int64_t h, int64_t Lc) {
  const int64_t H = a.L.H, K = a.L.K, V = a.L.V;
  const int64_t r = row0 * H + h;
  return {a.q.data<T>() + r * K,
          a.k.data<T>() + r * K,
          a.v.data<T>() + r * V,
          a.beta.data<T>() + r,
          a.g.defined() ? a.g.data<T>() + r : nullptr,
          H * K,
          H * V,
          H,
          Lc};
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
      T* S = fp + p * KV;  // the state is carried in the final-state row itself
      if (h0)
        std::memcpy(S, h0 + p * KV, KV * sizeof(T));
      else
        std::fill(S, S + KV, T(0));
      for (int64_t c = 0; c * C < len; ++c) {
        const int64_t t0 = c * C, Lc = std::min(C, len - t0);
        T* blk = w.use_block(sp ? sp + ((cc[n] + c) * H + h) * BS : w.scratch.data());
        if (sp) std::memcpy(blk, S, KV * sizeof(T));
        const ChunkIn<T> in = chunk_in<T>(a, L.offsets[n] + t0, h, Lc);
        row_terms(w, in, scale, /*gammas=*/true);
        solve(w, in, S);
        T* oc = op + ((L.offsets[n] + t0) * H + h) * V;
        mm<T>(false, false, Lc, V, K, T(1), w.qs.data(), K, S, V, T(0), oc, in.ldv);
        for (int64_t i = 0; i < Lc; ++i)
          for (int64_t d = 0; d < V; ++d) oc[i * in.ldv + d] *= w.eb[i];
        mm<T>(false, false, Lc, V, Lc, T(1), w.P, C, w.U, V, T(1), oc, in.ldv);
        const T ebL = w.eb[Lc - 1];
        for (int64_t e = 0; e < KV; ++e) S[e] *= ebL;
        mm<T>(true, false, K, V, Lc, T(1), w.kd.data(), K, w.U, V, T(1), S, V);
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
  gr.dbeta = like(a.beta);
  if (a.g.defined()) gr.dg = like(a.g);
  gr.dh0 = a.h0.defined() ? Tensor::empty({L.N, H, K, V}, a.q.dtype()) : Tensor();
  const std::vector<int64_t> cc = chunk_offsets(L, C);
  const int64_t BS = Work<T>::block_size(C, K, V);
  const T* sp = saved.data<T>();
  const T* dop = d_o.data<T>();
  const T* dfp = d_final.defined() ? d_final.data<T>() : nullptr;
  T *dq = gr.dq.data<T>(), *dk = gr.dk.data<T>(), *dv = gr.dv.data<T>(), *dbp = gr.dbeta.data<T>();
  T* dg = a.g.defined() ? gr.dg.data<T>() : nullptr;
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
        // The forward saved S0, W, U, T, (K Kᵀ) ⊙ Γ, P and Γ of this chunk (read only here).
        const T* S0 = w.use_block(const_cast<T*>(sp) + ((cc[n] + c) * H + h) * BS);
        const ChunkIn<T> in = chunk_in<T>(a, L.offsets[n] + t0, h, Lc);
        row_terms(w, in, scale, /*gammas=*/false);  // Γ is saved too
        fill_A(w, in);
        T* dO = w.G2.data();  // a contiguous copy of the chunk's rows of d_o
        T* dU = dO + Lc * V;
        const int64_t ldv = in.ldv, ldk = in.ldk;
        for (int64_t i = 0; i < Lc; ++i)
          std::memcpy(dO + i * V, dop + r0 * V + i * ldv, V * sizeof(T));
        std::fill(w.db.begin(), w.db.end(), 0.0);
        // dU = Pᵀ dO + Kd dS
        mm<T>(true, false, Lc, V, Lc, T(1), w.P, C, dO, V, T(0), dU, V);
        mm<T>(false, false, Lc, V, K, T(1), w.kd.data(), K, dS.data(), V, T(1), dU, V);
        // dS0 = e^{b_L} dS + (diag(e^b) scale Q)ᵀ dO − Wᵀ dU
        const T ebL = w.eb[Lc - 1];
        for (int64_t e = 0; e < KV; ++e) dSn[e] = ebL * dS[e];
        for (int64_t i = 0; i < Lc; ++i)
          for (int64_t d = 0; d < K; ++d) {
            w.L2[i * K + d] = w.eb[i] * w.qs[i * K + d];
            w.L2[(Lc + i) * K + d] = -w.W[i * K + d];
          }
        mm<T>(true, false, K, V, 2 * Lc, T(1), w.L2.data(), K, dO, V, T(1), dSn.data(), V);
        // Final-state term: S_L = e^{b_L} S0 + Kdᵀ U.
        w.db[Lc - 1] += static_cast<double>(ebL) * static_cast<double>(dot(S0, dS.data(), KV));
        mm<T>(false, true, Lc, K, V, T(1), w.U, V, dS.data(), V, T(0), w.dK.data(), K);
        for (int64_t j = 0; j < Lc; ++j) {
          T* dKj = w.dK.data() + j * K;
          const double z = static_cast<double>(w.ebl[j]) * dot(in.k + j * ldk, dKj, K);
          w.db[Lc - 1] += z;
          w.db[j] -= z;
          for (int64_t d = 0; d < K; ++d) dKj[d] *= w.ebl[j];
        }
        // Output's S0 term: O_i += e^{b_i} S0ᵀ qs_i.
        // X2 = [dO; dU] S0ᵀ: its top half serves here, its bottom half is −dW.
        mm<T>(false, true, 2 * Lc, K, V, T(1), dO, V, S0, V, T(0), w.X2.data(), K);
        const T* mdW = w.X2.data() + Lc * K;
        for (int64_t i = 0; i < Lc; ++i) {
          const T* Xi = w.X2.data() + i * K;
          w.db[i] += static_cast<double>(w.eb[i]) * dot(w.qs.data() + i * K, Xi, K);
          for (int64_t d = 0; d < K; ++d) w.dQ[i * K + d] = w.eb[i] * Xi[d];
        }
        // Intra-chunk term: O += P U with P = (qs kᵀ) ⊙ Γ ⊙ M.
        mm<T>(false, true, Lc, Lc, V, T(1), dO, V, w.U, V, T(0), w.dP.data(), C);
        double* db = w.db.data();
        for (int64_t i = 0; i < Lc; ++i) {
          T* dPi = w.dP.data() + i * C;
          const T *Pi = w.P + i * C, *gi = w.gam + i * C;
          double row = 0;  // pair (i, j) adds z to db_i and takes it from db_j
#pragma omp simd reduction(+ : row)
          for (int64_t j = 0; j <= i; ++j) {
            const double z = static_cast<double>(dPi[j]) * static_cast<double>(Pi[j]);
            row += z;
            db[j] -= z;
            dPi[j] *= gi[j];
          }
          db[i] += row;
          for (int64_t j = i + 1; j < Lc; ++j) dPi[j] = T(0);
        }
        mm<T>(false, false, Lc, K, Lc, T(1), w.dP.data(), C, in.k, ldk, T(1), w.dQ.data(), K);
        mm<T>(true, false, Lc, K, Lc, T(1), w.dP.data(), C, w.qs.data(), K, T(1), w.dK.data(), K);
        for (int64_t i = 0; i < Lc; ++i)
          for (int64_t d = 0; d < K; ++d) dq[r0 * K + i * ldk + d] = scale * w.dQ[i * K + d];
        // U = T diag(β) V − W S0, W = T diag(β e^b) K.
        mm<T>(true, false, Lc, V, Lc, T(1), w.Tm, C, dU, V, T(0), w.dVb.data(), V);
        mm<T>(true, false, Lc, K, Lc, T(-1), w.Tm, C, mdW, K, T(0), w.dKb.data(), K);
        for (int64_t i = 0; i < Lc; ++i) {
          const T bi = in.beta[i * in.ldh];
          const T *vi = in.v + i * ldv, *ki = in.k + i * ldk;
          const T *dVbi = w.dVb.data() + i * V, *dKbi = w.dKb.data() + i * K;
          for (int64_t d = 0; d < V; ++d) dv[r0 * V + i * ldv + d] = bi * dVbi[d];
          const T y = w.eb[i] * dot(ki, dKbi, K);
          dbeta[i] = dot(vi, dVbi, V) + y;
          w.db[i] += static_cast<double>(bi) * static_cast<double>(y);
          T* dKi = w.dK.data() + i * K;
          const T s = bi * w.eb[i];
          for (int64_t d = 0; d < K; ++d) dKi[d] += s * dKbi[d];
        }
        // dT = dU (diag(β)V)ᵀ + dW (diag(βe^b)K)ᵀ; dA = −Tᵀ dT Tᵀ (strictly lower part).
        mm<T>(false, true, Lc, Lc, V, T(1), dU, V, w.vb.data(), V, T(0), w.dT.data(), C);
        mm<T>(false, true, Lc, Lc, K, T(-1), mdW, K, w.kb.data(), K, T(1), w.dT.data(), C);
        mm<T>(true, false, Lc, Lc, Lc, T(1), w.Tm, C, w.dT.data(), C, T(0), w.tmp.data(), C);
        mm<T>(false, true, Lc, Lc, Lc, T(-1), w.tmp.data(), C, w.Tm, C, T(0), w.dA.data(), C);
        // A_ij = β_i (k_i·k_j) Γ_ij, j < i. tmp ← H1 = diag(β)(dA ⊙ Γ) (strict lower).
        for (int64_t i = 0; i < Lc; ++i) {
          const T bi = in.beta[i * in.ldh];
          const T *dAi = w.dA.data() + i * C, *Ai = w.A.data() + i * C;
          const T *gi = w.gam + i * C, *kki = w.kk + i * C;
          T* hi = w.tmp.data() + i * C;
          T dbe = 0;
          double row = 0;
#pragma omp simd reduction(+ : row, dbe)
          for (int64_t j = 0; j < i; ++j) {
            const double z = static_cast<double>(dAi[j]) * static_cast<double>(Ai[j]);
            row += z;
            db[j] -= z;
            dbe += dAi[j] * kki[j];
            hi[j] = bi * (dAi[j] * gi[j]);
          }
          db[i] += row;
          for (int64_t j = i; j < Lc; ++j) hi[j] = T(0);
          dbeta[i] += dbe;
        }
        // dK += (H1 + H1ᵀ) K
        for (int64_t i = 0; i < Lc; ++i)
          for (int64_t j = 0; j < i; ++j) w.tmp[j * C + i] = w.tmp[i * C + j];
        mm<T>(false, false, Lc, K, Lc, T(1), w.tmp.data(), C, in.k, ldk, T(1), w.dK.data(), K);
        for (int64_t i = 0; i < Lc; ++i) {
          for (int64_t d = 0; d < K; ++d) dk[r0 * K + i * ldk + d] = w.dK[i * K + d];
          dbp[r0 + i * H] = dbeta[i];
        }
        if (dg) {
          double acc = 0;
          for (int64_t i = Lc - 1; i >= 0; --i) {
            acc += w.db[i];
            dg[r0 + i * H] = static_cast<T>(acc);
          }
        }
        std::swap(dS, dSn);
      }
      if (dh0) std::memcpy(dh0 + p * KV, dS.data(), KV * sizeof(T));
    }
  });
  return gr;
}

}  // namespace

Tensor wy_chunk_forward(const DeltaArgs& a, int64_t chunk_size, Tensor& o, Tensor& final_state,
                        bool keep) {
  return dispatch_float(a.q.dtype(), a.op, [&]<typename T>() {
    return forward_impl<T>(a, chunk_size, o, final_state, keep);
  });
}

DeltaGrads wy_chunk_backward(const DeltaArgs& a, int64_t chunk_size, const Tensor& saved,
                             const Tensor& d_o, const Tensor& d_final) {
  return dispatch_float(a.q.dtype(), a.op, [&]<typename T>() {
    return backward_impl<T>(a, chunk_size, saved, d_o, d_final);
  });
}

DeltaKernel delta_chunk_kernel(int64_t chunk_size) {
  DeltaKernel kern;
  kern.forward = [chunk_size](const DeltaArgs& a, Tensor& o, Tensor& fin, bool keep) {
    return wy_chunk_forward(a, chunk_size, o, fin, keep);
  };
  kern.backward = [chunk_size](const DeltaArgs& a, const Tensor& saved, const Tensor& d_o,
                               const Tensor& d_final) {
    return wy_chunk_backward(a, chunk_size, saved, d_o, d_final);
  };
  return kern;
}

}  // namespace lnx::kernels
