// The WY / UT-transform chunk form of the delta-rule family: one driver for every gate.
// Per (sequence, head) and chunk of L tokens, with S0 the state before the chunk, b_i the
// chunk-local cumulative log gate (a scalar per token, a vector over the key dimension for
// kda, 0 without gates), exponentials taken elementwise over the key dimension, q̃ = scale·q:
//   M_ij = Σ_d k_id k_jd e^{b_id − b_jd} (j < i),   P_ij = Σ_d q̃_id k_jd e^{b_id − b_jd} (j ≤ i)
//   A = diag(β) M,  T = (I + A)⁻¹                         (forward substitution)
//   W = T diag(β)(K ⊙ e^b),  U = T diag(β) V − W S0       (U: the u_t of the chunk)
//   O = (Q̃ ⊙ e^b) S0 + P U,   S_L = Diag(e^{b_L}) S0 + (K ⊙ e^{b_L − b})ᵀ U
// Only differences b_i − b_j with j ≤ i (and b_L − b_i, b_i) are exponentiated, all ≤ 0 for
// log gates ≤ 0, so the form stays finite for gates far below zero.
//
// What depends on the gate is a policy, the template parameter Gate (the scalar gate of
// delta_rule and gated_delta_rule: scalar_gate_chunk.cpp; kda's per-key gate: kda/chunk.cpp):
// the row terms (b and its exponentials), the scores M and P, and every gate-gradient term.
// Forward phases per chunk: gate.row_terms, gate.scores, solve_wy, chunk_outputs, pass_state.
// The forward keeps a block per chunk and head (S0, W, U, T, M, P and the gate's own); the
// backward runs over the chunks in reverse carrying dS, the gradient of the state after the
// chunk, in phases:
//   state_gradients             dU = Pᵀ dO + (K ⊙ e^{b_L − b}) dS,
//                               dS0 = Diag(e^{b_L}) dS + (Q̃ ⊙ e^b)ᵀ dO − Wᵀ dU
//   final_state_key_gradients   dK = (U dSᵀ) ⊙ e^{b_L − b}      (S_L's key term)
//   state_read_gradients        dQ = (dO S0ᵀ) ⊙ e^b, and dW = −dU S0ᵀ
//   wy_backward                 dV = diag(β) Tᵀ dU, dK += diag(β) e^b ⊙ Tᵀ dW, dβ;
//                               dT = dU (diag(β)V)ᵀ + dW (diag(β)(K ⊙ e^b))ᵀ, dA = −Tᵀ dT Tᵀ
//   score_gradients             through P (weights dP = dO Uᵀ) and M (weights diag(β) dA):
//                               the gate's dQ, dK, dβ and db terms
//   store_chunk_gradients       dq = scale·dQ, dk, dβ, dg = the reverse cumulative sum of db
// Every product but the triangular solve and a few row scalings is a GEMM (lnx::gemm,
// single-threaded inside the parallel loop over (sequence, head) pairs).
#pragma once

#include <algorithm>
#include <vector>

#include "kernels/common/delta_family/delta_family_internal.h"
#include "kernels/common/kernel_math.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels::delta_detail {

// One chunk of one (sequence, head): its token rows, in place (H·K, H·V and H apart).
template <typename T> struct ChunkRows {
  const T *q, *k, *v, *beta;  // [len, K] (ldk), [len, K] (ldk), [len, V] (ldv), [len] (ldh)
  const T* g;                 // [len] (ldh) or [len, K] (ldk) log gates; null without gates
  int64_t ldk, ldv, ldh, len;
};

// Per-thread buffers of the chunk loops that every gate shares (leading dimension C for
// C×C, K or V for C×K, C×V), and the views of the chunk's block, laid out
// [S0: K·V][W: C·K][U: C·V][T: C²][M: C²][P: C²][the gate's own: extra].
template <typename T> struct ChunkWork {
  const int64_t C, K, V;
  // Row terms (filled by the gate's row_terms): Q̃ = scale·Q, Q̃ ⊙ e^b, diag(β)(K ⊙ e^b),
  // K ⊙ e^{b_L − b} [C, K] each; diag(β) V [C, V]; decay = e^{b_L} per key row of the state [K].
  std::vector<T> qs, qe, kb, kd, vb, decay;
  std::vector<T> A, dP, dT, dA, tmp;  // [C, C]
  std::vector<T> dQ, dK, dKb, dVb;    // [C, K], [C, K], [C, K], [C, V]
  std::vector<T> dbeta;               // [C]
  // Backward stacks: G2 = [dO; dU] [2C, V], L2 = [Q̃ ⊙ e^b; −W] and X2 = G2 S0ᵀ [2C, K], so
  // products sharing an operand run as one GEMM.
  std::vector<T> G2, L2, X2;
  std::vector<T> scratch;  // the block of a forward that keeps none
  // The chunk's block: S0 [K, V], W [C, K], U [C, V], T, M, P [C, C], the gate's own.
  T *S0 = nullptr, *W = nullptr, *U = nullptr, *Tm = nullptr, *M = nullptr, *P = nullptr, *extra = nullptr;

  ChunkWork(int64_t C_, int64_t K_, int64_t V_, int64_t extra_size)
      : C(C_),
        K(K_),
        V(V_),
        qs(C * K),
        qe(C * K),
        kb(C * K),
        kd(C * K),
        vb(C * V),
        decay(K),
        A(C * C),
        dP(C * C),
        dT(C * C),
        dA(C * C),
        tmp(C * C),
        dQ(C * K),
        dK(C * K),
        dKb(C * K),
        dVb(C * V),
        dbeta(C),
        G2(2 * C * V),
        L2(2 * C * K),
        X2(2 * C * K),
        scratch(block_size(C, K, V, extra_size)) {}
  static int64_t block_size(int64_t C, int64_t K, int64_t V, int64_t extra_size) {
    return K * V + C * K + C * V + 3 * C * C + extra_size;
  }
  void use_block(T* block) {
    S0 = block, W = S0 + K * V, U = W + C * K, Tm = U + C * V, M = Tm + C * C, P = M + C * C, extra = P + C * C;
  }
};

// Where the backward reads and writes.
template <typename T> struct ChunkGradients {
  const T* blocks;          // [chunks, H, block]: what the forward kept
  const T *dop, *dfin;      // do [B, T, H, V]; dfinal [N, H, K, V] or null
  T *dq, *dk, *dv, *dbeta;  // like q, k, v, beta
  T *dg, *dh0;              // like g, initial_state; null when they are not inputs
};

// The chunk loops of one thread: the inputs, the plan, the shared phases and the gate.
template <typename T, class Gate> struct WyChunk {
  const ChunkPlan& plan;
  const int64_t H, K, V, KV, C, block;
  const T scale;
  const T *q, *k, *v;  // [B, T, H, K], [B, T, H, K], [B, T, H, V]
  const T *beta, *g;   // [B, T, H]; [B, T, H] or [B, T, H, K] (null without gates)
  const T* h0;         // [N, H, K, V] or null
  ChunkWork<T> w;
  Gate gate;

  explicit WyChunk(const KernelArgs& a)
      : plan(a.chunks()),
        H(a.L.H),
        K(a.L.K),
        V(a.L.V),
        KV(K * V),
        C(plan.size),
        block(ChunkWork<T>::block_size(C, K, V, Gate::block_extra(C))),
        scale(static_cast<T>(a.scale)),
        q(a.ptr<T>("q")),
        k(a.ptr<T>("k")),
        v(a.ptr<T>("v")),
        beta(a.ptr<T>("beta")),
        g(a.ptr<T>("g")),
        h0(a.ptr<T>("initial_state")),
        w(C, K, V, Gate::block_extra(C)),
        gate(C, K, V) {}

  // (token row, head) index of the chunk's first row.
  int64_t first_row(const ChunkPlan::Chunk& ch, int64_t h) const { return ch.row0 * H + h; }
  ChunkRows<T> rows(const ChunkPlan::Chunk& ch, int64_t h) const {
    const int64_t r = first_row(ch, h);
    return {q + r * K, k + r * K, v + r * V, beta + r, g ? g + r * (Gate::per_key ? K : 1) : nullptr,
            H * K,     H * V,     H,         ch.len};
  }
  T* block_of(const T* blocks, const ChunkPlan::Chunk& ch, int64_t h) const {
    return const_cast<T*>(blocks) + (plan.index(ch.n, ch.c) * H + h) * block;  // read only in the backward
  }

  // ---- forward phases (after gate.row_terms and gate.scores) ----

  // A = strictLower(diag(β) M).
  void fill_A(const ChunkRows<T>& in) {
    for (int64_t i = 0; i < in.len; ++i) {
      const T bi = in.beta[i * in.ldh];
      T* Ai = w.A.data() + i * C;
      const T* Mi = w.M + i * C;
      for (int64_t j = 0; j < i; ++j) Ai[j] = bi * Mi[j];
      for (int64_t j = i; j < in.len; ++j) Ai[j] = T(0);
    }
  }
  // A, T = (I + A)⁻¹ by forward substitution (row by row: T_i = e_i − Σ_{m<i} A_im T_m),
  // W = T diag(β)(K ⊙ e^b) and U = T diag(β) V − W S0.
  void solve_wy(const ChunkRows<T>& in, const T* S0) {
    const int64_t Lc = in.len;
    fill_A(in);
    for (int64_t i = 0; i < Lc; ++i) {
      T* ti = w.Tm + i * C;
      std::fill(ti, ti + Lc, T(0));
      const T* Ai = w.A.data() + i * C;
      for (int64_t m = 0; m < i; ++m) {
        const T coef = -Ai[m];
        const T* tm = w.Tm + m * C;
#pragma omp simd
        for (int64_t j = 0; j <= m; ++j) ti[j] += coef * tm[j];
      }
      ti[i] = T(1);
    }
    gemm(kNoTrans, kNoTrans, Lc, K, Lc, T(1), w.Tm, C, w.kb.data(), K, T(0), w.W, K);
    gemm(kNoTrans, kNoTrans, Lc, V, Lc, T(1), w.Tm, C, w.vb.data(), V, T(0), w.U, V);
    gemm(kNoTrans, kNoTrans, Lc, V, K, T(-1), w.W, K, S0, V, T(1), w.U, V);
  }
  // O = (Q̃ ⊙ e^b) S0 + P U into the chunk's output rows o [len, V] (ldv).
  void chunk_outputs(const ChunkRows<T>& in, const T* S0, T* o) {
    gemm(kNoTrans, kNoTrans, in.len, V, K, T(1), w.qe.data(), K, S0, V, T(0), o, in.ldv);
    gemm(kNoTrans, kNoTrans, in.len, V, in.len, T(1), w.P, C, w.U, V, T(1), o, in.ldv);
  }
  // S ← Diag(e^{b_L}) S + (K ⊙ e^{b_L − b})ᵀ U.
  void pass_state(const ChunkRows<T>& in, T* S) {
    for (int64_t i = 0; i < K; ++i) {
      const T d = w.decay[i];
      T* Si = S + i * V;
      for (int64_t x = 0; x < V; ++x) Si[x] *= d;
    }
    gemm(kTrans, kNoTrans, K, V, in.len, T(1), w.kd.data(), K, w.U, V, T(1), S, V);
  }
  // The chunks of one (sequence, head) pair in order; the state lives in its final-state slot
  // fin [K, V]. With blocks, each chunk's block is kept there for the backward.
  void forward_pair(int64_t pair, T* o, T* fin, T* blocks) {
    const int64_t n = pair / H, h = pair % H;
    T* S = fin + pair * KV;
    if (h0)
      std::copy(h0 + pair * KV, h0 + (pair + 1) * KV, S);
    else
      std::fill(S, S + KV, T(0));
    for (int64_t c = 0; c < plan.count(n); ++c) {
      const ChunkPlan::Chunk& ch = plan.chunk(n, c);
      w.use_block(blocks ? block_of(blocks, ch, h) : w.scratch.data());
      if (blocks) std::copy(S, S + KV, w.S0);
      const ChunkRows<T> in = rows(ch, h);
      gate.row_terms(w, in, scale, /*forward=*/true);
      gate.scores(w, in);
      solve_wy(in, S);
      chunk_outputs(in, S, o + first_row(ch, h) * V);
      pass_state(in, S);
    }
  }

  // ---- backward phases (after gate.row_terms and fill_A on the chunk's block) ----

  // dU = Pᵀ dO + (K ⊙ e^{b_L − b}) dS into G2's bottom half (dO, copied from its rows do
  // [len, V] (ldv), in the top), and dS0 = Diag(e^{b_L}) dS + [Q̃ ⊙ e^b; −W]ᵀ [dO; dU].
  void state_gradients(const ChunkRows<T>& in, const T* do_rows, const T* dS, T* dS0) {
    const int64_t Lc = in.len;
    T* dO = w.G2.data();
    T* dU = dO + Lc * V;
    for (int64_t i = 0; i < Lc; ++i) std::copy(do_rows + i * in.ldv, do_rows + i * in.ldv + V, dO + i * V);
    gemm(kTrans, kNoTrans, Lc, V, Lc, T(1), w.P, C, dO, V, T(0), dU, V);
    gemm(kNoTrans, kNoTrans, Lc, V, K, T(1), w.kd.data(), K, dS, V, T(1), dU, V);
    for (int64_t i = 0; i < K; ++i) {
      const T d = w.decay[i];
      for (int64_t x = 0; x < V; ++x) dS0[i * V + x] = d * dS[i * V + x];
    }
    for (int64_t i = 0; i < Lc; ++i)
      for (int64_t d = 0; d < K; ++d) {
        w.L2[i * K + d] = w.qe[i * K + d];
        w.L2[(Lc + i) * K + d] = -w.W[i * K + d];
      }
    gemm(kTrans, kNoTrans, K, V, 2 * Lc, T(1), w.L2.data(), K, dO, V, T(1), dS0, V);
    gate.state_decay_gradient(w, dS, Lc);
  }
  // S_L's key term (K ⊙ e^{b_L − b})ᵀ U: dK = U dSᵀ, scaled per row by the gate.
  void final_state_key_gradients(const ChunkRows<T>& in, const T* dS) {
    gemm(kNoTrans, kTrans, in.len, K, V, T(1), w.U, V, dS, V, T(0), w.dK.data(), K);
    for (int64_t j = 0; j < in.len; ++j) gate.final_state_key_row(w, in, j);
  }
  // The reads of S0, X2 = [dO; dU] S0ᵀ: its top half gives dQ = (dO S0ᵀ) ⊙ e^b (and the
  // gate's terms), its bottom half is −dW.
  void state_read_gradients(const ChunkRows<T>& in) {
    gemm(kNoTrans, kTrans, 2 * in.len, K, V, T(1), w.G2.data(), V, w.S0, V, T(0), w.X2.data(), K);
    for (int64_t i = 0; i < in.len; ++i) gate.state_read_row(w, i, w.X2.data() + i * K);
  }
  // U = T diag(β) V − W S0, W = T diag(β)(K ⊙ e^b): dv = diag(β) Tᵀ dU into its rows dv
  // [len, V] (ldv), dK += diag(β) e^b ⊙ Tᵀ dW, dβ; then dA = −Tᵀ dT Tᵀ with
  // dT = dU (diag(β)V)ᵀ + dW (diag(β)(K ⊙ e^b))ᵀ.
  void wy_backward(const ChunkRows<T>& in, T* dv_rows) {
    const int64_t Lc = in.len;
    const T* dU = w.G2.data() + Lc * V;
    const T* mdW = w.X2.data() + Lc * K;  // −dW
    gemm(kTrans, kNoTrans, Lc, V, Lc, T(1), w.Tm, C, dU, V, T(0), w.dVb.data(), V);
    gemm(kTrans, kNoTrans, Lc, K, Lc, T(-1), w.Tm, C, mdW, K, T(0), w.dKb.data(), K);
    for (int64_t i = 0; i < Lc; ++i) {
      const T bi = in.beta[i * in.ldh];
      const T* dVbi = w.dVb.data() + i * V;
      for (int64_t d = 0; d < V; ++d) dv_rows[i * in.ldv + d] = bi * dVbi[d];
      const T y = gate.key_scaling_row(w, in, i, bi, w.dKb.data() + i * K);  // dβ through W
      w.dbeta[i] = dot(in.v + i * in.ldv, dVbi, V) + y;
    }
    gemm(kNoTrans, kTrans, Lc, Lc, V, T(1), dU, V, w.vb.data(), V, T(0), w.dT.data(), C);
    gemm(kNoTrans, kTrans, Lc, Lc, K, T(-1), mdW, K, w.kb.data(), K, T(1), w.dT.data(), C);
    gemm(kTrans, kNoTrans, Lc, Lc, Lc, T(1), w.Tm, C, w.dT.data(), C, T(0), w.tmp.data(), C);
    gemm(kNoTrans, kTrans, Lc, Lc, Lc, T(-1), w.tmp.data(), C, w.Tm, C, T(0), w.dA.data(), C);
  }
  // dP = dO Uᵀ, then the gate's gradients through the scores P and M.
  void score_gradients(const ChunkRows<T>& in) {
    gemm(kNoTrans, kTrans, in.len, in.len, V, T(1), w.G2.data(), V, w.U, V, T(0), w.dP.data(), C);
    gate.score_gradients(w, in);
  }
  // dq = scale·dQ, dk, dβ and dg of the chunk whose first (token row, head) index is r.
  void store_chunk_gradients(const ChunkRows<T>& in, int64_t r, const ChunkGradients<T>& out) {
    for (int64_t i = 0; i < in.len; ++i) {
      T *dqi = out.dq + r * K + i * in.ldk, *dki = out.dk + r * K + i * in.ldk;
      const T *dQi = w.dQ.data() + i * K, *dKi = w.dK.data() + i * K;
      for (int64_t d = 0; d < K; ++d) dqi[d] = scale * dQi[d];
      std::copy(dKi, dKi + K, dki);
      out.dbeta[r + i * in.ldh] = w.dbeta[i];
    }
    if (out.dg) gate.store_gate_gradients(in, out.dg + r * (Gate::per_key ? K : 1));
  }
  // The chunks of one (sequence, head) pair in reverse; dS, dS0: [K, V] scratch.
  void backward_pair(int64_t pair, const ChunkGradients<T>& out, std::vector<T>& dS, std::vector<T>& dS0) {
    const int64_t n = pair / H, h = pair % H;
    if (out.dfin)
      std::copy(out.dfin + pair * KV, out.dfin + (pair + 1) * KV, dS.begin());
    else
      std::fill(dS.begin(), dS.end(), T(0));
    for (int64_t c = plan.count(n) - 1; c >= 0; --c) {
      const ChunkPlan::Chunk& ch = plan.chunk(n, c);
      const int64_t r = first_row(ch, h);
      w.use_block(block_of(out.blocks, ch, h));
      const ChunkRows<T> in = rows(ch, h);
      gate.row_terms(w, in, scale, /*forward=*/false);
      fill_A(in);
      gate.clear(in.len);
      state_gradients(in, out.dop + r * V, dS.data(), dS0.data());
      final_state_key_gradients(in, dS.data());
      state_read_gradients(in);
      wy_backward(in, out.dv + r * V);
      score_gradients(in);
      store_chunk_gradients(in, r, out);
      std::swap(dS, dS0);
    }
    if (out.dh0) std::copy(dS.begin(), dS.end(), out.dh0 + pair * KV);
  }
};

// The chunk primitive of a gate policy Gate<T>: (sequence, head) pairs in parallel.
template <template <typename> class Gate> struct WyChunkForm {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    const SequenceLayout& L = a.L;
    const ChunkPlan& plan = a.chunks();
    KernelOutputs out = empty_outputs(a);
    T *op = out.o.data<T>(), *fin = out.final_state.data<T>();
    const int64_t block = ChunkWork<T>::block_size(plan.size, L.K, L.V, Gate<T>::block_extra(plan.size));
    Tensor blocks = saved ? Tensor::empty({plan.total(), L.H, block}, a.dtype) : Tensor();
    T* kept = saved ? blocks.data<T>() : nullptr;
    parallel_for(L.N * L.H, 1, [&](int64_t b, int64_t e) {
      WyChunk<T, Gate<T>> kernel(a);
      for (int64_t pair = b; pair < e; ++pair) kernel.forward_pair(pair, op, fin, kept);
    });
    if (saved) saved->insert("blocks", blocks);
    return out;
  }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
    TensorDict g = empty_gradients(a);
    auto ptr = [&](const char* name) { return g.contains(name) ? g.at(name).data<T>() : nullptr; };
    const ChunkGradients<T> out{saved.at("blocks").data<T>(),
                                d_o.data<T>(),
                                d_final.defined() ? d_final.data<T>() : nullptr,
                                ptr("q"),
                                ptr("k"),
                                ptr("v"),
                                ptr("beta"),
                                ptr("g"),
                                ptr("initial_state")};
    parallel_for(a.L.N * a.L.H, 1, [&](int64_t b, int64_t e) {
      WyChunk<T, Gate<T>> kernel(a);
      std::vector<T> dS(static_cast<size_t>(kernel.KV)), dS0(static_cast<size_t>(kernel.KV));
      for (int64_t pair = b; pair < e; ++pair) kernel.backward_pair(pair, out, dS, dS0);
    });
    return g;
  }
};

}  // namespace lnx::kernels::delta_detail
