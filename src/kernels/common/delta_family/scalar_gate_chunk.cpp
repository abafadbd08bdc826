// The chunk form of delta_rule and gated_delta_rule: the WY driver (wy_chunk_internal.h)
// with a scalar log gate per token and head (or none). With b_i = Σ_{m≤i} g_m the chunk's
// cumulative log gate and Γ_ij = e^{b_i − b_j} for j ≤ i (0 above the diagonal, |Γ| ≤ 1):
//   M = (K Kᵀ) ⊙ Γ,  P = (Q̃ Kᵀ) ⊙ Γ     (one GEMM and a mask each)
// Γ is kept in the chunk's block with the driver's. The gate gradient db_i (of b_i, f64) gains
// every term that e^{b_i − b_j} scales: a pair (i, j) of P or A adds z = dP_ij P_ij (or
// dA_ij A_ij) to db_i and takes it from db_j; dg is its reverse cumulative sum.
#include <cmath>

#include "kernels/common/delta_family/delta_family_internal.h"
#include "kernels/common/delta_family/wy_chunk_internal.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels::delta_detail {

namespace {

template <typename T> struct ScalarGate {
  static constexpr bool per_key = false;
  static int64_t block_extra(int64_t C) { return C * C; }  // Γ

  const int64_t C, K;
  std::vector<double> b, db;     // [C]: cumulative log gates and their gradients
  std::vector<T> eb, ebl, diff;  // [C]: e^b, e^{b_L − b}; scratch
  T* gamma = nullptr;            // Γ [C, C], in the chunk's block
  bool gated = false;

  ScalarGate(int64_t C_, int64_t K_, int64_t) : C(C_), K(K_), b(C), db(C), eb(C), ebl(C), diff(C) {}

  // Γ_ij = e^{b_i − b_j} for j ≤ i, 0 above (all ones on and below the diagonal without gates).
  void fill_gamma(int64_t Lc) {
    for (int64_t i = 0; i < Lc; ++i) {
      T* gi = gamma + i * C;
      if (gated) {
        for (int64_t j = 0; j <= i; ++j) diff[j] = static_cast<T>(b[i] - b[j]);
        for (int64_t j = 0; j <= i; ++j) gi[j] = fast_exp(diff[j]);
      } else {
        std::fill(gi, gi + i + 1, T(1));
      }
      std::fill(gi + i + 1, gi + Lc, T(0));
    }
  }
  // b, e^b, e^{b_L − b} (Γ too in the forward; the backward reads the kept one) and the
  // driver's row terms.
  void row_terms(ChunkWork<T>& w, const ChunkRows<T>& in, T scale, bool forward) {
    const int64_t Lc = in.len, V = w.V;
    gated = in.g != nullptr;
    gamma = w.extra;
    double acc = 0;
    for (int64_t i = 0; i < Lc; ++i) b[i] = acc += gated ? static_cast<double>(in.g[i * in.ldh]) : 0.0;
    for (int64_t i = 0; i < Lc; ++i) {
      eb[i] = static_cast<T>(std::exp(b[i]));
      ebl[i] = static_cast<T>(std::exp(b[Lc - 1] - b[i]));
    }
    if (forward) fill_gamma(Lc);
    for (int64_t i = 0; i < Lc; ++i) {
      const T bi = in.beta[i * in.ldh], s = bi * eb[i];
      const T *ki = in.k + i * in.ldk, *vi = in.v + i * in.ldv, *qi = in.q + i * in.ldk;
      T *kbi = w.kb.data() + i * K, *vbi = w.vb.data() + i * V, *qsi = w.qs.data() + i * K;
      T *qei = w.qe.data() + i * K, *kdi = w.kd.data() + i * K;
      for (int64_t d = 0; d < K; ++d) kbi[d] = s * ki[d];
      for (int64_t d = 0; d < V; ++d) vbi[d] = bi * vi[d];
      for (int64_t d = 0; d < K; ++d) qsi[d] = scale * qi[d];
      for (int64_t d = 0; d < K; ++d) qei[d] = eb[i] * qsi[d];
      for (int64_t d = 0; d < K; ++d) kdi[d] = ebl[i] * ki[d];
    }
    std::fill(w.decay.begin(), w.decay.end(), eb[Lc - 1]);
  }
  // M = (K Kᵀ) ⊙ Γ (read strictly below the diagonal), P = (Q̃ Kᵀ) ⊙ Γ.
  void scores(ChunkWork<T>& w, const ChunkRows<T>& in) {
    const int64_t Lc = in.len;
    gemm(kNoTrans, kTrans, Lc, Lc, K, T(1), in.k, in.ldk, in.k, in.ldk, T(0), w.M, C);
    if (gated)
      for (int64_t i = 0; i < Lc; ++i)
        for (int64_t j = 0; j <= i; ++j) w.M[i * C + j] *= gamma[i * C + j];
    gemm(kNoTrans, kTrans, Lc, Lc, K, T(1), w.qs.data(), K, in.k, in.ldk, T(0), w.P, C);
    for (int64_t i = 0; i < Lc; ++i)
      for (int64_t j = 0; j < Lc; ++j) w.P[i * C + j] *= gamma[i * C + j];
  }

  // ---- backward terms ----

  void clear(int64_t) { std::fill(db.begin(), db.end(), 0.0); }
  // S_L's e^{b_L} S0 term: db_L += e^{b_L} ⟨S0, dS⟩.
  void state_decay_gradient(const ChunkWork<T>& w, const T* dS, int64_t Lc) {
    db[Lc - 1] += static_cast<double>(eb[Lc - 1]) * static_cast<double>(dot(w.S0, dS, w.K * w.V));
  }
  // Row j of S_L's key term e^{b_L − b_j} k_j u_jᵀ (dK_j holds (U dSᵀ)_j).
  void final_state_key_row(ChunkWork<T>& w, const ChunkRows<T>& in, int64_t j) {
    T* dKj = w.dK.data() + j * K;
    const double z = static_cast<double>(ebl[j]) * dot(in.k + j * in.ldk, dKj, K);
    db[in.len - 1] += z;
    db[j] -= z;
    for (int64_t d = 0; d < K; ++d) dKj[d] *= ebl[j];
  }
  // Row i of O's e^{b_i} q̃_i S0 term (X = (dO S0ᵀ)_i).
  void state_read_row(ChunkWork<T>& w, int64_t i, const T* X) {
    db[i] += static_cast<double>(eb[i]) * dot(w.qs.data() + i * K, X, K);
    T* dQi = w.dQ.data() + i * K;
    for (int64_t d = 0; d < K; ++d) dQi[d] = eb[i] * X[d];
  }
  // Row i of W's β_i e^{b_i} k_i (dKb = (Tᵀ dW)_i): dK_i, db_i; returns the dβ_i term.
  T key_scaling_row(ChunkWork<T>& w, const ChunkRows<T>& in, int64_t i, T bi, const T* dKb) {
    const T y = eb[i] * dot(in.k + i * in.ldk, dKb, K);
    db[i] += static_cast<double>(bi) * static_cast<double>(y);
    T* dKi = w.dK.data() + i * K;
    const T s = bi * eb[i];
    for (int64_t d = 0; d < K; ++d) dKi[d] += s * dKb[d];
    return y;
  }
  // Through P = (Q̃ Kᵀ) ⊙ Γ: db from dP ⊙ P, then dQ += (dP ⊙ Γ) K, dK += (dP ⊙ Γ)ᵀ Q̃.
  void p_gradients(ChunkWork<T>& w, const ChunkRows<T>& in) {
    const int64_t Lc = in.len;
    for (int64_t i = 0; i < Lc; ++i) {
      T* dPi = w.dP.data() + i * C;
      const T *Pi = w.P + i * C, *gi = gamma + i * C;
      double row = 0;
#pragma omp simd reduction(+ : row)
      for (int64_t j = 0; j <= i; ++j) {
        const double z = static_cast<double>(dPi[j]) * static_cast<double>(Pi[j]);
        row += z;
        db[j] -= z;
        dPi[j] *= gi[j];
      }
      db[i] += row;
      std::fill(dPi + i + 1, dPi + Lc, T(0));
    }
    gemm(kNoTrans, kNoTrans, Lc, K, Lc, T(1), w.dP.data(), C, in.k, in.ldk, T(1), w.dQ.data(), K);
    gemm(kTrans, kNoTrans, Lc, K, Lc, T(1), w.dP.data(), C, w.qs.data(), K, T(1), w.dK.data(), K);
  }
  // Through A_ij = β_i (k_i·k_j) Γ_ij, j < i: db from dA ⊙ A, dβ_i += Σ_j dA_ij M_ij, and
  // dK += (H + Hᵀ) K with H = diag(β)(dA ⊙ Γ) strictly below the diagonal (built in tmp).
  void a_gradients(ChunkWork<T>& w, const ChunkRows<T>& in) {
    const int64_t Lc = in.len;
    for (int64_t i = 0; i < Lc; ++i) {
      const T bi = in.beta[i * in.ldh];
      const T *dAi = w.dA.data() + i * C, *Ai = w.A.data() + i * C, *gi = gamma + i * C, *Mi = w.M + i * C;
      T* hi = w.tmp.data() + i * C;
      T dbe = 0;
      double row = 0;
#pragma omp simd reduction(+ : row, dbe)
      for (int64_t j = 0; j < i; ++j) {
        const double z = static_cast<double>(dAi[j]) * static_cast<double>(Ai[j]);
        row += z;
        db[j] -= z;
        dbe += dAi[j] * Mi[j];
        hi[j] = bi * (dAi[j] * gi[j]);
      }
      db[i] += row;
      std::fill(hi + i, hi + Lc, T(0));
      w.dbeta[i] += dbe;
    }
    for (int64_t i = 0; i < Lc; ++i)
      for (int64_t j = 0; j < i; ++j) w.tmp[j * C + i] = w.tmp[i * C + j];
    gemm(kNoTrans, kNoTrans, Lc, K, Lc, T(1), w.tmp.data(), C, in.k, in.ldk, T(1), w.dK.data(), K);
  }
  void score_gradients(ChunkWork<T>& w, const ChunkRows<T>& in) {
    p_gradients(w, in);
    a_gradients(w, in);
  }
  // dg_i = Σ_{m ≥ i} db_m into dg [len] (stride ldh).
  void store_gate_gradients(const ChunkRows<T>& in, T* dg) const {
    double acc = 0;
    for (int64_t i = in.len - 1; i >= 0; --i) {
      acc += db[i];
      dg[i * in.ldh] = static_cast<T>(acc);
    }
  }
};

}  // namespace

const Primitive& scalar_gate_chunk_primitive(Gate gate) {
  LNX_CHECK(gate != Gate::per_key, Error, "[delta_rule] the scalar-gate chunk form takes no per-key gate");
  static const Primitive ungated =
      make_primitive<WyChunkForm<ScalarGate>>("delta_rule_chunk", input_specs(Gate::none), true);
  static const Primitive gated =
      make_primitive<WyChunkForm<ScalarGate>>("gated_delta_rule_chunk", input_specs(Gate::scalar), true);
  return gate == Gate::none ? ungated : gated;
}

}  // namespace lnx::kernels::delta_detail
