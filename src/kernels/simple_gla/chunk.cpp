// simple_gla's chunk form: the sequence of each (sequence, head) is cut into chunks of S
// tokens (the last one partial). Within a chunk, b_i = Σ_{j≤i} g_j (cumulative log gate, f64),
//   o_i = scale·Σ_{j≤i} exp(b_i − b_j)(q_i·k_j) v_j + scale·exp(b_i)·S_prevᵀ q_i,
//   S_next = exp(b_last)·S_prev + Σ_j exp(b_last − b_j) k_j v_jᵀ.
// Only differences b_i − b_j with j ≤ i (and b_last − b_j, and b_i) are exponentiated, all
// ≤ 0 for log gates ≤ 0, so strongly negative gates underflow to 0 instead of overflowing.
//
// Forward, in three parallel phases:
//   1. per (chunk, head): the chunk's own state contribution Σ_j exp(b_last − b_j) k_j v_jᵀ;
//   2. per (sequence, head): the states before every chunk, a short scan over chunks;
//   3. per (chunk, head): intra-chunk attention and the read of the state before the chunk.
// Backward, mirrored: (1) per chunk scale·Σ_i exp(b_i) q_i do_iᵀ, (2) the reverse scan for the
// gradient of the state after every chunk, (3) per chunk dq, dk, dv from small GEMMs, and dg
// directly as the sum of the terms each gate scales (exp(g_t)·⟨S_{t−1}, dS_t⟩ split into the
// intra-chunk pairs, the reads of the state before the chunk and the path to the state after
// it), not by the cancelling identity Σ_{s≥t}(q_s·dq_s − k_s·dk_s).
//
// The chunk products are GEMMs on the token rows in place (leading dimension H·K or H·V), run
// by lnx::gemm inside parallel_for (BLAS is single-threaded there); scratch is per thread.
// The value maps (v_scale, skip: Mamba-2's Δ and D) are applied in the same loops.
#include <limits>
#include <vector>

#include "kernels/common/kernel_math.h"
#include "kernels/simple_gla/simple_gla_internal.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels::simple_gla_detail {

namespace {

constexpr Transpose N_ = kNoTrans, T_ = kTrans;
using Chunk = ChunkPlan::Chunk;

// A[i][j] ← A[i][j]·exp(b_i − b_j) for j ≤ i, 0 above the diagonal (A is len × len); with
// col, also ·col[j].
template <typename T> void decay_mask(T* A, const double* b, int64_t len, const T* col = nullptr) {
  for (int64_t i = 0; i < len; ++i) {
    T* Ai = A + i * len;
    const double bi = b[i];
    for (int64_t j = 0; j <= i; ++j) Ai[j] *= fast_exp(static_cast<T>(bi - b[j]));
    if (col)
      for (int64_t j = 0; j <= i; ++j) Ai[j] *= col[j];
    for (int64_t j = i + 1; j < len; ++j) Ai[j] = T(0);
  }
}

// dst[i][·] = factor_i · src[i][·] for rows of width w (src row stride lds).
template <typename T> void scale_rows(T* dst, const T* src, int64_t lds, int64_t len, int64_t w, const T* factor) {
  for (int64_t i = 0; i < len; ++i)
    for (int64_t x = 0; x < w; ++x) dst[i * w + x] = factor[i] * src[i * lds + x];
}

// dst[i][·] += factor_i · src[i][·] (dst row stride ldd, src packed rows of width w).
template <typename T> void add_scaled_rows(T* dst, int64_t ldd, const T* src, int64_t len, int64_t w, const T* factor) {
  for (int64_t i = 0; i < len; ++i)
    for (int64_t x = 0; x < w; ++x) dst[i * ldd + x] += factor[i] * src[i * w + x];
}

// Raw pointers into the inputs.
template <typename T> struct Ptrs {
  const T *q, *k, *v, *h0, *v_scale, *skip;
  Gates<T> gate;
  explicit Ptrs(const KernelArgs& a)
      : q(a.ptr<T>("q")),
        k(a.ptr<T>("k")),
        v(a.ptr<T>("v")),
        h0(a.ptr<T>("initial_state")),
        v_scale(a.ptr<T>("v_scale")),
        skip(a.ptr<T>("skip")),
        gate(a) {}
};

// Per-thread scratch of the chunk loops.
template <typename T> struct Scratch {
  std::vector<double> b, u, col;            // cumulative log gates; gate-gradient sums
  std::vector<T> e_in, e_out, A, dA, X, Y;  // e_in_i = exp(b_i), e_out_i = exp(b_last − b_i)
  std::vector<T> vs, fo;                    // vs_i = v_scale of token i (1 without), fo_i = e_out_i·vs_i
  Scratch(int64_t S, int64_t K, int64_t V)
      : b(S),
        u(S),
        col(S),
        e_in(S),
        e_out(S),
        A(S * S),
        dA(S * S),
        X(S * std::max(K, V)),
        Y(S * std::max(K, V)),
        vs(S),
        fo(S) {}
  // b, e_in, e_out, vs, fo for one chunk; returns b_last. Factors below T's smallest normal
  // number are flushed to 0 (as fast_exp does), so no subnormal operand reaches the GEMMs.
  double gates(const Ptrs<T>& p, const Chunk& ch, int64_t h, int64_t H) {
    double last = 0;
    for (int64_t i = 0; i < ch.len; ++i) b[i] = last += p.gate(ch.row0 + i, h);
    for (int64_t i = 0; i < ch.len; ++i) {
      e_in[i] = flush(std::exp(b[i]));
      e_out[i] = flush(std::exp(last - b[i]));
      vs[i] = p.v_scale ? p.v_scale[(ch.row0 + i) * H + h] : T(1);
      fo[i] = e_out[i] * vs[i];
    }
    return last;
  }
  static T flush(double x) { return x < static_cast<double>(std::numeric_limits<T>::min()) ? T(0) : static_cast<T>(x); }
};

// What the chunk kernels share: the inputs, the plan, and the per-chunk phases of the forward
// and the backward. A chunk's item index is it = (chunk index)·H + h.
template <typename T> struct Kernel {
  const KernelArgs& a;
  const ChunkPlan& plan;
  const Ptrs<T> p;
  const int64_t S, H, K, V, HK, HV, KV;
  const T scale;

  explicit Kernel(const KernelArgs& a_)
      : a(a_),
        plan(a_.chunks()),
        p(a_),
        S(plan.size),
        H(a_.L.H),
        K(a_.L.K),
        V(a_.L.V),
        HK(H * K),
        HV(H * V),
        KV(K * V),
        scale(static_cast<T>(a_.scale)) {}

  int64_t items() const { return plan.total() * H; }
  double chunk_log_decay(const Chunk& ch, int64_t h) const {
    double last = 0;
    for (int64_t i = 0; i < ch.len; ++i) last += p.gate(ch.row0 + i, h);
    return last;
  }
  void initial_state(int64_t pair, T* dst) const {
    if (p.h0)
      std::copy(p.h0 + pair * KV, p.h0 + (pair + 1) * KV, dst);
    else
      std::fill(dst, dst + KV, T(0));
  }

  // ---- forward phases (after s.gates) ----

  // The chunk's own contribution Σ_j exp(b_last − b_j) k_j (vs_j v_j)ᵀ into dst.
  void contribution(Scratch<T>& s, const Chunk& ch, int64_t h, T* dst) const {
    scale_rows(s.X.data(), p.k + (ch.row0 * H + h) * K, HK, ch.len, K, s.fo.data());
    gemm(T_, N_, K, V, ch.len, T(1), s.X.data(), K, p.v + (ch.row0 * H + h) * V, HV, T(0), dst, V);
  }
  // The chunk's outputs from the state before it (A: where its scores go). Rescales s.e_in.
  void outputs(Scratch<T>& s, const Chunk& ch, int64_t h, const T* Sprev, T* A, T* op) const {
    const int64_t len = ch.len;
    const T* q = p.q + (ch.row0 * H + h) * K;
    T* o = op + (ch.row0 * H + h) * V;
    const T* v = p.v + (ch.row0 * H + h) * V;
    gemm(N_, T_, len, len, K, scale, q, HK, p.k + (ch.row0 * H + h) * K, HK, T(0), A, len);
    decay_mask(A, s.b.data(), len);
    const T* Av = A;  // A diag(vs): the scores applied to the unscaled values
    if (p.v_scale) {
      for (int64_t i = 0; i < len; ++i)
        for (int64_t j = 0; j < len; ++j) s.dA[i * len + j] = A[i * len + j] * s.vs[j];
      Av = s.dA.data();
    }
    gemm(N_, N_, len, V, len, T(1), Av, len, v, HV, T(0), o, HV);
    for (int64_t i = 0; i < len; ++i) s.e_in[i] *= scale;
    scale_rows(s.X.data(), q, HK, len, K, s.e_in.data());
    gemm(N_, N_, len, V, K, T(1), s.X.data(), K, Sprev, V, T(1), o, HV);
    if (p.skip) {  // o += skip_h·v
      const T d = p.skip[h];
      for (int64_t i = 0; i < len; ++i)
        for (int64_t x = 0; x < V; ++x) o[i * HV + x] += d * v[i * HV + x];
    }
  }

  // ---- backward phases (after s.gates) ----

  // The chunk's reads of the state before it: dst = scale·Σ_i exp(b_i) q_i do_iᵀ. Rescales s.e_in.
  void state_reads(Scratch<T>& s, const Chunk& ch, int64_t h, const T* dop, T* dst) const {
    for (int64_t i = 0; i < ch.len; ++i) s.e_in[i] *= scale;
    scale_rows(s.X.data(), p.q + (ch.row0 * H + h) * K, HK, ch.len, K, s.e_in.data());
    gemm(T_, N_, K, V, ch.len, T(1), s.X.data(), K, dop + (ch.row0 * H + h) * V, HV, T(0), dst, V);
  }
};

// The backward's outputs and the per-chunk gradient phases.
template <typename T> struct Backward : Kernel<T> {
  using Kernel<T>::a, Kernel<T>::plan, Kernel<T>::p, Kernel<T>::S, Kernel<T>::H, Kernel<T>::K, Kernel<T>::V,
      Kernel<T>::HK, Kernel<T>::HV, Kernel<T>::KV, Kernel<T>::scale;
  const T *st, *kept, *dop, *dFp;
  T *dqp, *dkp, *dvp, *dh0;
  const bool want_gates;
  std::vector<double> dgt;   // [rows, H]: gradient of every token's log gate
  std::vector<double> dvst;  // [rows, H]: ⟨v, dv_eff⟩, the gradient of v_scale
  std::vector<double> dskt;  // [rows, H]: ⟨v, do⟩, summed into the gradient of skip

  Backward(const KernelArgs& a_, const Saved& saved, const Tensor& d_o, const Tensor& d_final, TensorDict& g)
      : Kernel<T>(a_),
        st(saved.at("states").data<T>()),
        kept(saved.at("scores").data<T>()),
        dop(d_o.data<T>()),
        dFp(d_final.defined() ? d_final.data<T>() : nullptr),
        dqp(g.at("q").data<T>()),
        dkp(g.at("k").data<T>()),
        dvp(g.at("v").data<T>()),
        dh0(g.contains("initial_state") ? g.at("initial_state").data<T>() : nullptr),
        want_gates(p.gate.any()) {
    const size_t rows = static_cast<size_t>(a.L.B * a.L.T * H);
    dgt.assign(want_gates ? rows : 0, 0.0);
    dvst.assign(p.v_scale ? rows : 0, 0.0);
    dskt.assign(p.skip ? rows : 0, 0.0);
  }
  const T* state_slot(int64_t n, int64_t c, int64_t h) const { return st + (plan.slot(n, c) * H + h) * KV; }
  void final_gradient(int64_t pair, T* dst) const {
    if (dFp)
      std::copy(dFp + pair * KV, dFp + (pair + 1) * KV, dst);
    else
      std::fill(dst, dst + KV, T(0));
  }

  // Intra-chunk part of dg_τ: Σ_{i≥τ} Σ_{j<τ} A_ij (dO Vᵀ)_ij, the pairs the gate of τ stands
  // between; col[j] = Σ_{i'≥i} of column j, built from the bottom row up. Into s.u.
  void intra_gate_grads(Scratch<T>& s, const T* A, int64_t len) const {
    std::fill(s.col.begin(), s.col.begin() + len, 0.0);
    for (int64_t i = len - 1; i >= 0; --i) {
      const T* Ai = A + i * len;
      const T* Pi = s.dA.data() + i * len;
      double r = 0;
#pragma omp simd reduction(+ : r)
      for (int64_t j = 0; j < i; ++j) {
        s.col[j] += static_cast<double>(Ai[j] * Pi[j] * s.vs[j]);
        r += s.col[j];
      }
      s.u[i] = r;
    }
  }
  // dq = scale·dA K + scale·diag(exp(b)) dO S_prevᵀ; adds the reads of S_prev by queries
  // i ≥ τ to s.u (s.X holds dO S_prevᵀ).
  void dq_and_read_grads(Scratch<T>& s, const Chunk& ch, int64_t h, const T* Sprev) const {
    const int64_t len = ch.len, qo = (ch.row0 * H + h) * K;
    const T* q = p.q + qo;
    T* dq = dqp + qo;
    gemm(N_, N_, len, K, len, scale, s.dA.data(), len, p.k + qo, HK, T(0), dq, HK);
    gemm(N_, T_, len, K, V, scale, dop + (ch.row0 * H + h) * V, HV, Sprev, V, T(0), s.X.data(), K);
    add_scaled_rows(dq, HK, s.X.data(), len, K, s.e_in.data());
    if (!want_gates) return;
    double tail = 0;
    for (int64_t i = len - 1; i >= 0; --i) {
      tail += static_cast<double>(s.e_in[i]) * dot_f64(q + i * HK, s.X.data() + i * K, K);
      s.u[i] += tail;
    }
  }
  // dk = scale·dAᵀ Q + diag(exp(b_last − b)) V dS_nextᵀ; the gate gradients of the chunk:
  // dg_τ = u_τ + Σ_{j<τ} κ_j + exp(b_last)⟨S_prev, dS_next⟩.
  void dk_and_gate_grads(Scratch<T>& s, const Chunk& ch, int64_t h, double b_last, const T* Sprev, const T* dSnext) {
    const int64_t len = ch.len, qo = (ch.row0 * H + h) * K;
    const T *q = p.q + qo, *k = p.k + qo, *v = p.v + (ch.row0 * H + h) * V;
    gemm(T_, N_, len, K, len, scale, s.dA.data(), len, q, HK, T(0), dkp + qo, HK);
    gemm(N_, T_, len, K, V, T(1), v, HV, dSnext, V, T(0), s.X.data(), K);
    add_scaled_rows(dkp + qo, HK, s.X.data(), len, K, s.fo.data());
    if (!want_gates) return;
    const double through = std::exp(b_last) * dot_f64(Sprev, dSnext, KV);
    double head = 0;
    for (int64_t j = 0; j < len; ++j) {
      dgt[(ch.row0 + j) * H + h] = s.u[j] + head + through;
      head += static_cast<double>(s.fo[j]) * dot_f64(k + j * HK, s.X.data() + j * K, K);
    }
  }
  // dv = Aᵀ dO + diag(exp(b_last − b)) K dS_next, then the value maps: dv holds the gradient
  // of the effective value vs_j·v_j, so dv_scale_j = ⟨v_j, dv_j⟩, dv_j ← vs_j·dv_j
  // (+ skip_h·do_j), and ⟨v_j, do_j⟩ for skip.
  void dv_and_value_maps(Scratch<T>& s, const Chunk& ch, int64_t h, const T* A, const T* dSnext) {
    const int64_t len = ch.len, vo = (ch.row0 * H + h) * V;
    const T *v = p.v + vo, *dO = dop + vo;
    T* dv = dvp + vo;
    gemm(T_, N_, len, V, len, T(1), A, len, dO, HV, T(0), dv, HV);
    gemm(N_, N_, len, V, K, T(1), p.k + (ch.row0 * H + h) * K, HK, dSnext, V, T(0), s.Y.data(), V);
    add_scaled_rows(dv, HV, s.Y.data(), len, V, s.e_out.data());
    if (!p.v_scale && !p.skip) return;
    for (int64_t j = 0; j < len; ++j) {
      const size_t row = static_cast<size_t>((ch.row0 + j) * H + h);
      T* dvj = dv + j * HV;
      const T *vj = v + j * HV, *doj = dO + j * HV;
      if (p.v_scale) {
        dvst[row] = dot_f64(vj, dvj, V);
        for (int64_t x = 0; x < V; ++x) dvj[x] *= s.vs[j];
      }
      if (p.skip) {
        dskt[row] = dot_f64(vj, doj, V);
        const T d = p.skip[h];
        for (int64_t x = 0; x < V; ++x) dvj[x] += d * doj[x];
      }
    }
  }
  // dq, dk, dv of the chunk and its gate gradients, from the state before it and the gradient
  // of the state after it (after s.gates, which returned b_last). A = scale·(Q Kᵀ) ⊙ D (kept
  // by the forward) and dA = (dO Vᵀ) ⊙ D, D_ij = exp(b_i − b_j) for j ≤ i.
  void chunk_grads(Scratch<T>& s, const Chunk& ch, int64_t h, int64_t it, double b_last, const T* Sprev,
                   const T* dSnext) {
    const T* A = kept + it * S * S;
    gemm(N_, T_, ch.len, ch.len, V, T(1), dop + (ch.row0 * H + h) * V, HV, p.v + (ch.row0 * H + h) * V, HV, T(0),
         s.dA.data(), ch.len);
    if (want_gates) intra_gate_grads(s, A, ch.len);
    decay_mask(s.dA.data(), s.b.data(), ch.len, p.v_scale ? s.vs.data() : nullptr);
    dq_and_read_grads(s, ch, h, Sprev);
    dk_and_gate_grads(s, ch, h, b_last, Sprev, dSnext);
    dv_and_value_maps(s, ch, h, A, dSnext);
  }
  // dv_scale [B,T,H], dskip[h] = Σ_rows dskt[row, h], and the gate gradients.
  void store(TensorDict& g) const {
    store_gate_grads(a, dgt, g);
    const int64_t n = a.L.B * a.L.T * H;
    if (p.v_scale) {
      Tensor d = Tensor::empty({a.L.B, a.L.T, H}, a.dtype);
      for (int64_t i = 0; i < n; ++i) d.data<T>()[i] = static_cast<T>(dvst[i]);
      g.insert("v_scale", d);
    }
    if (p.skip) {
      std::vector<double> sum(static_cast<size_t>(H), 0.0);
      for (int64_t i = 0; i < n; ++i) sum[i % H] += dskt[i];
      Tensor d = Tensor::empty({H}, a.dtype);
      for (int64_t h = 0; h < H; ++h) d.data<T>()[h] = static_cast<T>(sum[h]);
      g.insert("skip", d);
    }
  }
};

// keep: a backward will follow, so the states before every chunk and the intra-chunk scores
// are kept for it (the scores are S² numbers per chunk and head, a quarter of a state at
// S = 64, K = V = 128; recomputing them costs a GEMM and the decay mask per chunk).
//
// With at least as many (sequence, head) pairs as threads, each pair walks its chunks in one
// pass with its state in cache (outputs, then the state after the chunk), and the states go to
// memory only when kept. With fewer pairs, the three phases in the file's header spread the
// chunks over the threads instead.
template <typename T> struct Forward : Kernel<T> {
  using Kernel<T>::a, Kernel<T>::plan, Kernel<T>::p, Kernel<T>::S, Kernel<T>::H, Kernel<T>::K, Kernel<T>::V,
      Kernel<T>::KV;
  Tensor o, final_state, states, scores;
  T *st = nullptr, *kept = nullptr, *op, *fin;

  Forward(const KernelArgs& a_, bool keep, bool one_pass) : Kernel<T>(a_) {
    o = Tensor::empty({a.L.B, a.L.T, H, V}, a.dtype);
    final_state = Tensor::empty({a.L.N, H, K, V}, a.dtype);
    if (keep || !one_pass) states = Tensor::empty({plan.slots, H, K, V}, a.dtype);
    if (keep) scores = Tensor::empty({this->items(), S, S}, a.dtype);
    st = states.defined() ? states.data<T>() : nullptr;
    kept = keep ? scores.data<T>() : nullptr;
    op = o.data<T>();
    fin = final_state.data<T>();
  }
  T* state_slot(int64_t n, int64_t c, int64_t h) const { return st + (plan.slot(n, c) * H + h) * KV; }
  T* scores_of(Scratch<T>& s, int64_t it) const { return kept ? kept + it * S * S : s.A.data(); }

  void one_pass(int64_t b, int64_t e) {
    Scratch<T> s(S, K, V);
    std::vector<T> add(static_cast<size_t>(KV));
    std::vector<T*> cur(static_cast<size_t>(e - b));  // each pair's state, updated in place if not kept
    int64_t chunks = 0;
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / H, h = pair % H;
      cur[pair - b] = st ? state_slot(n, 0, h) : fin + pair * KV;
      this->initial_state(pair, cur[pair - b]);
      chunks = std::max(chunks, plan.count(n));
    }
    // Chunk by chunk over this thread's pairs: neighbouring heads' rows are neighbours in
    // memory, so the rows of one chunk stream in together.
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t pair = b; pair < e; ++pair) {
        const int64_t n = pair / H, h = pair % H;
        if (c >= plan.count(n)) continue;
        const Chunk& ch = plan.chunk(n, c);
        const T decay = static_cast<T>(std::exp(s.gates(p, ch, h, H)));
        T*& state = cur[pair - b];
        this->contribution(s, ch, h, add.data());  // before outputs, which rescale e_in only
        this->outputs(s, ch, h, state, scores_of(s, plan.index(n, c) * H + h), op);
        T* next = st ? state_slot(n, c + 1, h) : state;
        for (int64_t x = 0; x < KV; ++x) next[x] = decay * state[x] + add[x];
        state = next;
      }
    if (st)
      for (int64_t pair = b; pair < e; ++pair) std::copy(cur[pair - b], cur[pair - b] + KV, fin + pair * KV);
  }

  void phases() {
    // 1. Each chunk's own contribution, into the slot after it.
    parallel_for(this->items(), 1, [&](int64_t b, int64_t e) {
      Scratch<T> s(S, K, V);
      for (int64_t it = b; it < e; ++it) {
        const Chunk& ch = plan.chunks[it / H];
        s.gates(p, ch, it % H, H);
        this->contribution(s, ch, it % H, state_slot(ch.n, ch.c + 1, it % H));
      }
    });
    // 2. The scan over chunks.
    parallel_for(a.L.N * H, 1, [&](int64_t b, int64_t e) {
      for (int64_t pair = b; pair < e; ++pair) {
        const int64_t n = pair / H, h = pair % H;
        this->initial_state(pair, state_slot(n, 0, h));
        for (int64_t c = 0; c < plan.count(n); ++c) {
          const T decay = static_cast<T>(std::exp(this->chunk_log_decay(plan.chunk(n, c), h)));
          const T* prev = state_slot(n, c, h);
          T* next = state_slot(n, c + 1, h);
          for (int64_t x = 0; x < KV; ++x) next[x] += decay * prev[x];
        }
        const T* last_state = state_slot(n, plan.count(n), h);
        std::copy(last_state, last_state + KV, fin + pair * KV);
      }
    });
    // 3. Outputs.
    parallel_for(this->items(), 1, [&](int64_t b, int64_t e) {
      Scratch<T> s(S, K, V);
      for (int64_t it = b; it < e; ++it) {
        const Chunk& ch = plan.chunks[it / H];
        s.gates(p, ch, it % H, H);
        this->outputs(s, ch, it % H, state_slot(ch.n, ch.c, it % H), scores_of(s, it), op);
      }
    });
  }
};

// As the forward's one pass: each thread walks the chunks in reverse over its pairs, chunk by
// chunk, with each pair's state gradient dS in cache.
template <typename T> void backward_one_pass(Backward<T>& w) {
  const int64_t H = w.H, KV = w.KV;
  const ChunkPlan& plan = w.plan;
  parallel_for_weighted(
      w.a.L.N * H, [&](int64_t pair) { return plan.count(pair / H); },
      [&](int64_t b, int64_t e) {
        Scratch<T> s(w.S, w.K, w.V);
        std::vector<T> dS(static_cast<size_t>((e - b) * KV)), add(static_cast<size_t>(KV));
        int64_t chunks = 0;
        for (int64_t pair = b; pair < e; ++pair) {
          w.final_gradient(pair, dS.data() + (pair - b) * KV);
          chunks = std::max(chunks, plan.count(pair / H));
        }
        for (int64_t c = chunks - 1; c >= 0; --c)
          for (int64_t pair = b; pair < e; ++pair) {
            const int64_t n = pair / H, h = pair % H;
            if (c >= plan.count(n)) continue;
            const Chunk& ch = plan.chunk(n, c);
            T* dSp = dS.data() + (pair - b) * KV;
            const double b_last = s.gates(w.p, ch, h, H);
            w.chunk_grads(s, ch, h, plan.index(n, c) * H + h, b_last, w.state_slot(n, c, h), dSp);
            w.state_reads(s, ch, h, w.dop, add.data());  // after chunk_grads, which reads e_in unscaled
            const T decay = static_cast<T>(std::exp(b_last));
            for (int64_t x = 0; x < KV; ++x) dSp[x] = decay * dSp[x] + add[x];
          }
        if (w.dh0)
          for (int64_t pair = b; pair < e; ++pair)
            std::copy(dS.data() + (pair - b) * KV, dS.data() + (pair - b + 1) * KV, w.dh0 + pair * KV);
      });
}

// The backward in three chunk-parallel phases (fewer pairs than threads).
template <typename T> void backward_phases(Backward<T>& w) {
  const int64_t H = w.H, KV = w.KV;
  const ChunkPlan& plan = w.plan;
  Tensor dstates = Tensor::empty({plan.slots, H, w.K, w.V}, w.a.dtype);  // gradients of the states
  T* dst = dstates.data<T>();
  auto dstate_slot = [&](int64_t n, int64_t c, int64_t h) { return dst + (plan.slot(n, c) * H + h) * KV; };
  // 1. Each chunk's reads of the state before it, into slot c.
  parallel_for(w.items(), 1, [&](int64_t b, int64_t e) {
    Scratch<T> s(w.S, w.K, w.V);
    for (int64_t it = b; it < e; ++it) {
      const Chunk& ch = plan.chunks[it / H];
      s.gates(w.p, ch, it % H, H);
      w.state_reads(s, ch, it % H, w.dop, dstate_slot(ch.n, ch.c, it % H));
    }
  });
  // 2. Reverse scan: slot c + 1 ends up holding the gradient of the state after chunk c,
  //    slot 0 that of the initial state.
  parallel_for(w.a.L.N * H, 1, [&](int64_t b, int64_t e) {
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / H, h = pair % H;
      w.final_gradient(pair, dstate_slot(n, plan.count(n), h));
      for (int64_t c = plan.count(n) - 1; c >= 0; --c) {
        const T decay = static_cast<T>(std::exp(w.chunk_log_decay(plan.chunk(n, c), h)));
        T* here = dstate_slot(n, c, h);
        const T* after = dstate_slot(n, c + 1, h);
        for (int64_t x = 0; x < KV; ++x) here[x] += decay * after[x];
      }
      if (w.dh0) std::copy(dstate_slot(n, 0, h), dstate_slot(n, 0, h) + KV, w.dh0 + pair * KV);
    }
  });
  // 3. dq, dk, dv per chunk, and the gate gradients.
  parallel_for(w.items(), 1, [&](int64_t b, int64_t e) {
    Scratch<T> s(w.S, w.K, w.V);
    for (int64_t it = b; it < e; ++it) {
      const Chunk& ch = plan.chunks[it / H];
      const int64_t h = it % H;
      const double b_last = s.gates(w.p, ch, h, H);
      w.chunk_grads(s, ch, h, it, b_last, w.state_slot(ch.n, ch.c, h), dstate_slot(ch.n, ch.c + 1, h));
    }
  });
}

struct ChunkForm {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    const int64_t pairs = a.L.N * a.L.H;
    const bool one_pass = pairs >= num_threads();
    Forward<T> f(a, saved != nullptr, one_pass);
    if (one_pass)
      parallel_for_weighted(
          pairs, [&](int64_t pair) { return f.plan.count(pair / a.L.H); },
          [&](int64_t b, int64_t e) { f.one_pass(b, e); });
    else
      f.phases();
    if (saved) {
      saved->insert("states", f.states);
      saved->insert("scores", f.scores);
    }
    return {f.o, f.final_state};
  }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
    TensorDict g;
    for (const char* name : {"q", "k", "v", "initial_state"})
      if (a.has(name)) g.insert(name, Tensor::empty(a[name].shape(), a.dtype));
    Backward<T> w(a, saved, d_o, d_final, g);
    if (a.L.N * a.L.H >= num_threads())
      backward_one_pass(w);
    else
      backward_phases(w);
    w.store(g);
    return g;
  }
};

}  // namespace

const Primitive& chunk_primitive() {
  static const Primitive p = make_primitive<ChunkForm>("simple_gla_chunk", input_specs(true), true);
  return p;
}

}  // namespace lnx::kernels::simple_gla_detail
