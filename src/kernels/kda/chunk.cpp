// The chunk form of kda: the WY driver (common/delta_family/wy_chunk_internal.h) with a log
// gate per key dimension. With b_i = Σ_{m≤i} g_m ∈ R^K the chunk-local cumulative log gates,
// E_i = e^{b_i} and El_i = e^{b_L − b_i} (elementwise, ≤ 1), the scores
//   M_ij = Σ_d k_id k_jd e^{b_id − b_jd} (j < i),   P_ij = Σ_d q̃_id k_jd e^{b_id − b_jd} (j ≤ i)
// need exp of per-dimension differences. Inside sub-blocks of kSub rows they are formed pair
// by pair; a sub-block starting at row r against the rows j < r before it is a GEMM of
// x_i ⊙ e^{b_i − b_r} with y_j ⊙ e^{b_r − b_j}, both factors ≤ 1.
// The backward mirrors that: each pair term is x_i · y_j ⊙ e^{b_i − b_j} summed over d, so
// its gradient in b_i is x_i ⊙ dx_i and in b_j is −y_j ⊙ dy_j. The pair loops gather only dx
// (dQp: x = q̃, dKr: x = k) and dy (dKc: y = k), and db (per token and key dimension, f64)
// follows per element afterwards.
#include <cmath>

#include "kernels/common/delta_family/wy_chunk_internal.h"
#include "kernels/kda/kda_internal.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels::kda_detail {

namespace {

using delta_detail::ChunkRows;
using delta_detail::ChunkWork;

constexpr int64_t kSub = 16;  // sub-block of a chunk whose inner pairs are formed directly

template <typename T> struct PerKeyGate {
  static constexpr bool per_key = true;
  static int64_t block_extra(int64_t) { return 0; }

  const int64_t C, K;
  std::vector<double> b, db;      // [C, K]: cumulative log gates and their gradients
  std::vector<T> E, El, e, diff;  // [C, K], [C, K]: e^b, e^{b_L − b}; [K] scratch
  // Sub-block factors (block_factors): fx, xk, xq of the block's rows, fy, Y of the rows
  // before it; tq, tk, tY, c2m the backward's products with them.
  std::vector<T> fx, xk, xq, fy, Y, tq, tk, tY, c2m;
  std::vector<T> dQp, dKr, dKc;  // [C, K]: the pair gradients (see the file's banner)

  PerKeyGate(int64_t C_, int64_t K_, int64_t)
      : C(C_),
        K(K_),
        b(C * K),
        db(C * K),
        E(C * K),
        El(C * K),
        e(K),
        diff(K),
        fx(C * K),
        xk(C * K),
        xq(C * K),
        fy(C * K),
        Y(C * K),
        tq(C * K),
        tk(C * K),
        tY(C * K),
        c2m(C * C),
        dQp(C * K),
        dKr(C * K),
        dKc(C * K) {}

  // out ← e^{b_i − b_j} over the key dimension.
  void pair_decay(int64_t i, int64_t j, T* out) {
    const double *bi = b.data() + i * K, *bj = b.data() + j * K;
    for (int64_t d = 0; d < K; ++d) diff[d] = static_cast<T>(bi[d] - bj[d]);
    for (int64_t d = 0; d < K; ++d) out[d] = fast_exp(diff[d]);
  }
  // For the rows i ∈ [r, r1) of a sub-block and the rows j < r before it, the decay factors
  // as e^{b_i − b_j} = e^{b_i − b_r} · e^{b_r − b_j}, both ≤ 1 (b only decreases), so the
  // off-block pairs are GEMMs of xk = k ⊙ fx, xq = q̃ ⊙ fx against Y = k ⊙ fy.
  void block_factors(const ChunkWork<T>& w, const ChunkRows<T>& in, int64_t r, int64_t r1) {
    for (int64_t i = r; i < r1; ++i) {
      pair_decay(i, r, fx.data() + i * K);
      for (int64_t d = 0; d < K; ++d) {
        xk[i * K + d] = in.k[i * in.ldk + d] * fx[i * K + d];
        xq[i * K + d] = w.qs[i * K + d] * fx[i * K + d];
      }
    }
    for (int64_t j = 0; j < r; ++j) {
      pair_decay(r, j, fy.data() + j * K);
      for (int64_t d = 0; d < K; ++d) Y[j * K + d] = in.k[j * in.ldk + d] * fy[j * K + d];
    }
  }
  // b, E, El and the driver's row terms diag(β)(K ⊙ E), diag(β) V, Q̃, Q̃ ⊙ E, K ⊙ El.
  void row_terms(ChunkWork<T>& w, const ChunkRows<T>& in, T scale, bool) {
    const int64_t V = w.V, Lc = in.len;
    for (int64_t i = 0; i < Lc; ++i)
      for (int64_t d = 0; d < K; ++d)
        b[i * K + d] = (i ? b[(i - 1) * K + d] : 0.0) + static_cast<double>(in.g[i * in.ldk + d]);
    const double* bL = b.data() + (Lc - 1) * K;
    for (int64_t i = 0; i < Lc; ++i) {
      const T bi = in.beta[i * in.ldh];
      const T *ki = in.k + i * in.ldk, *qi = in.q + i * in.ldk, *vi = in.v + i * in.ldv;
      T *Ei = E.data() + i * K, *Eli = El.data() + i * K;
      const double* b_i = b.data() + i * K;
      for (int64_t d = 0; d < K; ++d) Ei[d] = static_cast<T>(b_i[d]);
      for (int64_t d = 0; d < K; ++d) Eli[d] = static_cast<T>(bL[d] - b_i[d]);
      for (int64_t d = 0; d < K; ++d) Ei[d] = fast_exp(Ei[d]);
      for (int64_t d = 0; d < K; ++d) Eli[d] = fast_exp(Eli[d]);
      T* __restrict kb = w.kb.data() + i * K;
      T* __restrict qs = w.qs.data() + i * K;
      T* __restrict qe = w.qe.data() + i * K;
      T* __restrict kd = w.kd.data() + i * K;
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) {
        kb[d] = bi * Ei[d] * ki[d];
        qs[d] = scale * qi[d];
        qe[d] = scale * qi[d] * Ei[d];
        kd[d] = Eli[d] * ki[d];
      }
      for (int64_t d = 0; d < V; ++d) w.vb[i * V + d] = bi * vi[d];
    }
    std::copy(E.begin() + (Lc - 1) * K, E.begin() + Lc * K, w.decay.begin());
  }
  // M and P: the off-block pairs by GEMM, the pairs inside a sub-block directly.
  void scores(ChunkWork<T>& w, const ChunkRows<T>& in) {
    const int64_t Lc = in.len;
    for (int64_t r = kSub; r < Lc; r += kSub) {
      const int64_t r1 = std::min(Lc, r + kSub);
      block_factors(w, in, r, r1);
      gemm(kNoTrans, kTrans, r1 - r, r, K, T(1), xk.data() + r * K, K, Y.data(), K, T(0), w.M + r * C, C);
      gemm(kNoTrans, kTrans, r1 - r, r, K, T(1), xq.data() + r * K, K, Y.data(), K, T(0), w.P + r * C, C);
    }
    for (int64_t i = 0; i < Lc; ++i) {
      const T* ki = in.k + i * in.ldk;
      const T* qi = w.qs.data() + i * K;
      T *Mi = w.M + i * C, *Pi = w.P + i * C;
      for (int64_t j = i / kSub * kSub; j <= i; ++j) {
        pair_decay(i, j, e.data());
        const T* kj = in.k + j * in.ldk;
        T m = 0, p = 0;
#pragma omp simd reduction(+ : m, p)
        for (int64_t d = 0; d < K; ++d) {
          const T x = kj[d] * e[d];
          m += ki[d] * x;
          p += qi[d] * x;
        }
        Mi[j] = j < i ? m : T(0);
        Pi[j] = p;
      }
      for (int64_t j = i + 1; j < Lc; ++j) Mi[j] = Pi[j] = T(0);
    }
  }

  // ---- backward terms ----

  void clear(int64_t Lc) { std::fill(db.begin(), db.begin() + Lc * K, 0.0); }
  // S_L's Diag(E_L) S0 term: db_L,i += E_L,i ⟨S0_i, dS_i⟩ per key row i.
  void state_decay_gradient(const ChunkWork<T>& w, const T* dS, int64_t Lc) {
    const int64_t V = w.V;
    for (int64_t i = 0; i < K; ++i)
      db[(Lc - 1) * K + i] += static_cast<double>(w.decay[i]) * dot(w.S0 + i * V, dS + i * V, V);
  }
  // Row j of S_L's key term (k_j ⊙ El_j) u_jᵀ (dK_j holds (U dSᵀ)_j).
  void final_state_key_row(ChunkWork<T>& w, const ChunkRows<T>& in, int64_t j) {
    double* dbL = db.data() + (in.len - 1) * K;
    T* dKj = w.dK.data() + j * K;
    const T *Elj = El.data() + j * K, *kj = in.k + j * in.ldk;
    for (int64_t d = 0; d < K; ++d) {
      const T x = dKj[d] * Elj[d];
      const double z = static_cast<double>(x) * static_cast<double>(kj[d]);
      dbL[d] += z;
      db[j * K + d] -= z;
      dKj[d] = x;
    }
  }
  // Row i of O's (q̃_i ⊙ E_i) S0 term (X = (dO S0ᵀ)_i).
  void state_read_row(ChunkWork<T>& w, int64_t i, const T* X) {
    const T *Ei = E.data() + i * K, *qei = w.qe.data() + i * K;
    T* dQi = w.dQ.data() + i * K;
    double* dbi = db.data() + i * K;
    for (int64_t d = 0; d < K; ++d) {
      dQi[d] = Ei[d] * X[d];
      dbi[d] += static_cast<double>(qei[d]) * static_cast<double>(X[d]);
    }
  }
  // Row i of W's β_i (k_i ⊙ E_i) (dKb = (Tᵀ dW)_i): dK_i, db_i; returns the dβ_i term.
  T key_scaling_row(ChunkWork<T>& w, const ChunkRows<T>& in, int64_t i, T bi, const T* dKb) {
    const T *ki = in.k + i * in.ldk, *Ei = E.data() + i * K;
    T* dKi = w.dK.data() + i * K;
    T ysum = 0;
    for (int64_t d = 0; d < K; ++d) {
      const T y = Ei[d] * ki[d] * dKb[d];
      ysum += y;
      db[i * K + d] += static_cast<double>(bi) * static_cast<double>(y);
      dKi[d] += bi * Ei[d] * dKb[d];
    }
    return ysum;
  }
  // The off-block pairs of every sub-block by GEMM: weights c1 = dP_ij (of P) and
  // c2 = β_i dA_ij (of M), for i in the block and j < r before it.
  void off_block_pair_gradients(const ChunkWork<T>& w, const ChunkRows<T>& in) {
    const int64_t Lc = in.len;
    for (int64_t r = kSub; r < Lc; r += kSub) {
      const int64_t r1 = std::min(Lc, r + kSub), nr = r1 - r;
      block_factors(w, in, r, r1);
      for (int64_t i = r; i < r1; ++i) {
        const T bi = in.beta[i * in.ldh];
        for (int64_t j = 0; j < r; ++j) c2m[(i - r) * C + j] = bi * w.dA[i * C + j];
      }
      const T* c1m = w.dP.data() + r * C;
      gemm(kNoTrans, kNoTrans, nr, K, r, T(1), c1m, C, Y.data(), K, T(0), tq.data(), K);
      gemm(kNoTrans, kNoTrans, nr, K, r, T(1), c2m.data(), C, Y.data(), K, T(0), tk.data(), K);
      gemm(kTrans, kNoTrans, r, K, nr, T(1), c1m, C, xq.data() + r * K, K, T(0), tY.data(), K);
      gemm(kTrans, kNoTrans, r, K, nr, T(1), c2m.data(), C, xk.data() + r * K, K, T(1), tY.data(), K);
      for (int64_t i = r; i < r1; ++i)
        for (int64_t d = 0; d < K; ++d) {
          dQp[i * K + d] += tq[(i - r) * K + d] * fx[i * K + d];
          dKr[i * K + d] += tk[(i - r) * K + d] * fx[i * K + d];
        }
      for (int64_t j = 0; j < r; ++j)
        for (int64_t d = 0; d < K; ++d) dKc[j * K + d] += tY[j * K + d] * fy[j * K + d];
    }
  }
  // The pairs inside each sub-block directly. The diagonal P_ii does not depend on the gates
  // and goes straight to dQ, dK (kept out of the db sums, where it would cancel in rounding
  // against terms that may be far smaller).
  void in_block_pair_gradients(ChunkWork<T>& w, const ChunkRows<T>& in) {
    for (int64_t i = 0; i < in.len; ++i) {
      const T bi = in.beta[i * in.ldh];
      const T *ki = in.k + i * in.ldk, *qi = w.qs.data() + i * K;
      T *dQi = dQp.data() + i * K, *dKi = dKr.data() + i * K;
      const T cd = w.dP[i * C + i];
      for (int64_t d = 0; d < K; ++d) {
        w.dQ[i * K + d] += cd * ki[d];
        w.dK[i * K + d] += cd * qi[d];
      }
      for (int64_t j = i / kSub * kSub; j < i; ++j) {
        const T c1 = w.dP[i * C + j], c2 = bi * w.dA[i * C + j];
        pair_decay(i, j, e.data());
        const T* kj = in.k + j * in.ldk;
        T* dKj = dKc.data() + j * K;
#pragma omp simd
        for (int64_t d = 0; d < K; ++d) {
          const T ed = e[d], kje = kj[d] * ed;
          dQi[d] += c1 * kje;
          dKi[d] += c2 * kje;
          dKj[d] += (c1 * qi[d] + c2 * ki[d]) * ed;
        }
      }
    }
  }
  // Through P (weights dP) and M (weights β dA): dβ_i += Σ_{j<i} dA_ij M_ij, the pair
  // gradients, then db = q̃ ⊙ dQp + k ⊙ (dKr − dKc) and dQ += dQp, dK += dKr + dKc.
  void score_gradients(ChunkWork<T>& w, const ChunkRows<T>& in) {
    const int64_t Lc = in.len;
    for (int64_t i = 0; i < Lc; ++i) {
      T dbe = 0;
      for (int64_t j = 0; j < i; ++j) dbe += w.dA[i * C + j] * w.M[i * C + j];
      w.dbeta[i] += dbe;
    }
    std::fill(dQp.begin(), dQp.begin() + Lc * K, T(0));
    std::fill(dKr.begin(), dKr.begin() + Lc * K, T(0));
    std::fill(dKc.begin(), dKc.begin() + Lc * K, T(0));
    off_block_pair_gradients(w, in);
    in_block_pair_gradients(w, in);
    for (int64_t i = 0; i < Lc; ++i)
      for (int64_t d = 0; d < K; ++d) {
        const int64_t x = i * K + d;
        const T kid = in.k[i * in.ldk + d];
        db[x] += static_cast<double>(w.qs[x] * dQp[x]) + static_cast<double>(kid * (dKr[x] - dKc[x]));
        w.dQ[x] += dQp[x];
        w.dK[x] += dKr[x] + dKc[x];
      }
  }
  // dg_i = Σ_{m ≥ i} db_m per key dimension into dg [len, K] (stride ldk).
  void store_gate_gradients(const ChunkRows<T>& in, T* dg) const {
    for (int64_t d = 0; d < K; ++d) {
      double acc = 0;
      for (int64_t i = in.len - 1; i >= 0; --i) {
        acc += db[i * K + d];
        dg[i * in.ldk + d] = static_cast<T>(acc);
      }
    }
  }
};

}  // namespace

const Primitive& chunk_primitive() {
  static const Primitive p = make_primitive<delta_detail::WyChunkForm<PerKeyGate>>(
      "kda_chunk", delta_detail::input_specs(delta_detail::Gate::per_key), true);
  return p;
}

}  // namespace lnx::kernels::kda_detail
