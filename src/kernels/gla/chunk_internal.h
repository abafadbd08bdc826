// Internal to gla's chunk form (chunk.cpp): the per-chunk quantities the forward and the
// backward share.
//
// For one chunk of one (sequence, head), tokens i = 0 … n−1 with log gates g_i (per key dim),
// all exponents are sums of gates, hence ≤ 0, so every exponential below is ≤ 1:
//   P_i = Σ_{s≤i} g_s         (inclusive prefix)   Qg_i = q̃_i ⊙ exp(P_i), a_last = exp(P_{n−1})
//   R_i = Σ_{s>i} g_s         (exclusive suffix)   Kd_i = k_i ⊙ exp(R_i)
// The intra-chunk scores A_ij = Σ_d q̃_id k_jd exp(P_id − P_jd) (j ≤ i) are formed in
// sub-chunks of kSub tokens, each exponent split at sub-chunk boundaries so that no factor
// exceeds 1 (never exp(P_i)·exp(−P_j), which overflows for strongly negative gates):
//   for sub-chunks J < I:  A_IJ = q̂_I · k'_Jᵀ,  q̂_i = q̃_i ⊙ exp(lp_i),
//                          k'_j = k_j ⊙ exp(ls_j)·exp(Σ_{J<M<I} tot_M)
//   (lp_i: inclusive prefix of the gates inside I; ls_j: exclusive suffix inside J; tot_M:
//   the sum over sub-chunk M) — one GEMM per I; and inside a sub-chunk, exactly, with the
//   running product E = Π_{s=j+1..i} exp(g_s) (no exponent differences, no cancellation).
// Exponents are formed as sums of gates of one sign, never as differences of prefix sums, so
// they keep their relative accuracy.
#pragma once

#include <algorithm>
#include <vector>

#include "kernels/common/kernel_math.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels::gla_detail {

constexpr int64_t kSub = 16;  // sub-chunk length of the intra-chunk scores

template <typename T> struct ChunkScratch {
  int64_t C, K, V, c;  // chunk size, dims, sub-chunk size
  int64_t n = 0;       // tokens in the current chunk
  // [C, K] rows, contiguous:
  std::vector<T> qs, kc, a, eP, Qg, eR, Kd, elp, qh, els, fp, kp;
  std::vector<T> tot;          // [C/c, K]
  std::vector<T> alast;        // [K]
  std::vector<T> A;            // [C, C]
  std::vector<T> row, ew, qe;  // [K]: running sums; their exponentials; q̃_i ⊙ Π exp(g)

  ChunkScratch(int64_t C_, int64_t K_, int64_t V_) : C(C_), K(K_), V(V_), c(std::min(kSub, C_)) {
    const size_t ck = static_cast<size_t>(C * K);
    for (auto* x : {&qs, &kc, &a, &eP, &Qg, &eR, &Kd, &elp, &qh, &els, &fp, &kp}) x->resize(ck);
    tot.resize(static_cast<size_t>(((C + c - 1) / c) * K));
    alast.resize(static_cast<size_t>(K));
    row.resize(static_cast<size_t>(K));
    qe.resize(static_cast<size_t>(K));
    ew.resize(static_cast<size_t>(K));
    A.resize(static_cast<size_t>(C * C));
  }
  int64_t subchunks() const { return (n + c - 1) / c; }

  // Loads the chunk's n tokens (rows of stride sK) and forms every factor above. Exponentials
  // are taken of sums inside one sub-chunk and of sums of whole sub-chunks; the chunk-level
  // factors are their products (each factor ≤ 1, so a product underflows only when it is
  // negligible): exp(P_i) = exp(Σ_{M<I} tot_M)·exp(lp_i), exp(R_j) = exp(ls_j)·exp(Σ_{M>J} tot_M).
  void prepare(const T* q, const T* k, const T* g, int64_t sK, int64_t n_, T scale) {
    n = n_;
    for (int64_t i = 0; i < n; ++i) {
      const T *qi = q + i * sK, *ki = k + i * sK, *gi = g + i * sK;
      T *qsi = qs.data() + i * K, *kci = kc.data() + i * K, *ai = a.data() + i * K;
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) {
        qsi[d] = scale * qi[d];
        kci[d] = ki[d];
        ai[d] = fast_exp(gi[d]);
      }
    }
    const int64_t nsub = subchunks();
    // Per sub-chunk: local inclusive prefix (→ q̂), exclusive suffix (→ els), total.
    T* r = row.data();
    for (int64_t I = 0; I < nsub; ++I) {
      const int64_t s0 = I * c, s1 = std::min(n, s0 + c);
      T* t = tot.data() + I * K;
      std::fill(t, t + K, T(0));
      for (int64_t i = s0; i < s1; ++i) {
        const T* gi = g + i * sK;
#pragma omp simd
        for (int64_t d = 0; d < K; ++d) {
          t[d] += gi[d];
          elp[i * K + d] = fast_exp(t[d]);
          qh[i * K + d] = qs[i * K + d] * elp[i * K + d];
        }
      }
      std::fill(r, r + K, T(0));
      for (int64_t i = s1 - 1; i >= s0; --i) {
        const T* gi = g + i * sK;
#pragma omp simd
        for (int64_t d = 0; d < K; ++d) {
          els[i * K + d] = fast_exp(r[d]);
          r[d] += gi[d];
        }
      }
    }
    // Chunk-level prefix factors (→ Qg, a_last) and suffix factors (→ Kd).
    std::fill(r, r + K, T(0));
    for (int64_t I = 0; I < nsub; ++I) {
      const int64_t s0 = I * c, s1 = std::min(n, s0 + c);
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) ew[d] = fast_exp(r[d]);
      for (int64_t i = s0; i < s1; ++i)
#pragma omp simd
        for (int64_t d = 0; d < K; ++d) {
          eP[i * K + d] = ew[d] * elp[i * K + d];
          Qg[i * K + d] = qs[i * K + d] * eP[i * K + d];
        }
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) r[d] += tot[I * K + d];
    }
    std::copy(eP.begin() + (n - 1) * K, eP.begin() + n * K, alast.begin());
    std::fill(r, r + K, T(0));
    for (int64_t J = nsub - 1; J >= 0; --J) {
      const int64_t s0 = J * c, s1 = std::min(n, s0 + c);
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) ew[d] = fast_exp(r[d]);
      for (int64_t j = s0; j < s1; ++j)
#pragma omp simd
        for (int64_t d = 0; d < K; ++d) {
          eR[j * K + d] = els[j * K + d] * ew[d];
          Kd[j * K + d] = kc[j * K + d] * eR[j * K + d];
        }
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) r[d] += tot[J * K + d];
    }
  }

  // Rows j < I·c of fp (factors exp(ls_j)·exp(Σ_{J<M<I} tot_M)) and kp = k ⊙ fp, for sub-chunk I.
  void build_kp(int64_t I) {
    T* W = row.data();
    std::fill(W, W + K, T(0));
    for (int64_t J = I - 1; J >= 0; --J) {
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) ew[d] = fast_exp(W[d]);
      for (int64_t j = J * c; j < (J + 1) * c; ++j)
#pragma omp simd
        for (int64_t d = 0; d < K; ++d) {
          fp[j * K + d] = els[j * K + d] * ew[d];
          kp[j * K + d] = kc[j * K + d] * fp[j * K + d];
        }
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) W[d] += tot[J * K + d];
    }
  }

  // A [n, n] (leading dimension C): the causal intra-chunk scores, zero above the diagonal.
  void scores() {
    std::fill(A.begin(), A.end(), T(0));
    for (int64_t I = 0, nsub = subchunks(); I < nsub; ++I) {
      const int64_t s0 = I * c, s1 = std::min(n, s0 + c);
      if (I > 0) {
        build_kp(I);
        gemm(Transpose::No, Transpose::Yes, s1 - s0, s0, K, T(1), qh.data() + s0 * K, K, kp.data(), K, T(0),
             A.data() + s0 * C, C);
      }
      for (int64_t i = s0; i < s1; ++i) {
        std::copy(qs.begin() + i * K, qs.begin() + (i + 1) * K, qe.begin());
        for (int64_t j = i; j >= s0; --j) {
          const T* kj = kc.data() + j * K;
          const T* aj = a.data() + j * K;
          A[i * C + j] = dot(qe.data(), kj, K);
#pragma omp simd
          for (int64_t d = 0; d < K; ++d) qe[d] *= aj[d];
        }
      }
    }
  }
};

}  // namespace lnx::kernels::gla_detail
