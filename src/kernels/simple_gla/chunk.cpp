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
#include <limits>
#include <vector>

#include "kernels/simple_gla/args.h"
#include "kernels/simple_gla/simple_gla.h"
#include "tensor/cpu/blas.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels {

using namespace simple_gla_detail;

namespace {

constexpr Transpose N_ = Transpose::No, T_ = Transpose::Yes;

// The chunks of every sequence, and where each sequence's states live: sequence n has
// chunks first[n] .. first[n+1] and state slots first[n] + n .. first[n+1] + n (slot c holds
// the state before chunk c; the last slot the final state).
struct ChunkPlan {
  struct Chunk {
    int64_t n, c, row0, len;
  };
  std::vector<Chunk> chunks;
  std::vector<int64_t> first;  // N + 1
  int64_t slots = 0;
  int64_t slot(int64_t n, int64_t c) const { return first[n] + n + c; }
  int64_t count(int64_t n) const { return first[n + 1] - first[n]; }
};

ChunkPlan plan_chunks(const SequenceLayout& L, int64_t S) {
  ChunkPlan p;
  p.first.push_back(0);
  for (int64_t n = 0; n < L.N; ++n) {
    for (int64_t r = L.offsets[n]; r < L.offsets[n + 1]; r += S)
      p.chunks.push_back({n, static_cast<int64_t>(p.chunks.size()) - p.first[n], r,
                          std::min(S, L.offsets[n + 1] - r)});
    p.first.push_back(static_cast<int64_t>(p.chunks.size()));
  }
  p.slots = static_cast<int64_t>(p.chunks.size()) + L.N;
  return p;
}

// Cumulative log gates of one chunk and head into b[0..len); returns b[len−1].
template <typename T>
double chunk_gates(const Ptrs<T>& p, const ChunkPlan::Chunk& ch, int64_t h, int64_t H, double* b) {
  double acc = 0;
  for (int64_t i = 0; i < ch.len; ++i) b[i] = acc += p.gate(ch.row0 + i, h, H);
  return acc;
}

// A[i][j] ← A[i][j]·exp(b_i − b_j) for j ≤ i, 0 above the diagonal (A is len × len); with
// col, also ·col[j].
template <typename T>
void decay_mask(T* A, const double* b, int64_t len, const T* col = nullptr) {
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
template <typename T>
void scale_rows(T* dst, const T* src, int64_t lds, int64_t len, int64_t w, const T* factor) {
  for (int64_t i = 0; i < len; ++i)
    for (int64_t x = 0; x < w; ++x) dst[i * w + x] = factor[i] * src[i * lds + x];
}

// dst[i][·] += factor_i · src[i][·] (dst row stride ldd, src packed rows of width w).
template <typename T>
void add_scaled_rows(T* dst, int64_t ldd, const T* src, int64_t len, int64_t w, const T* factor) {
  for (int64_t i = 0; i < len; ++i)
    for (int64_t x = 0; x < w; ++x) dst[i * ldd + x] += factor[i] * src[i * w + x];
}

// Per-thread scratch of the chunk loops.
template <typename T> struct Scratch {
  std::vector<double> b;
  std::vector<T> e_in, e_out, A, dA, X, Y;  // e_in_i = exp(b_i), e_out_i = exp(b_last − b_i)
  std::vector<T> vs, fo;  // vs_i = v_scale of token i (1 without), fo_i = e_out_i·vs_i
  Scratch(int64_t S, int64_t K, int64_t V)
      : b(S), e_in(S), e_out(S), A(S * S), dA(S * S), X(S * std::max(K, V)), Y(S * std::max(K, V)),
        vs(S), fo(S) {}
  // b, e_in, e_out, vs, fo for one chunk; returns b_last. Factors below T's smallest normal
  // number are flushed to 0 (as fast_exp does), so no subnormal operand reaches the GEMMs.
  double gates(const Ptrs<T>& p, const ChunkPlan::Chunk& ch, int64_t h, int64_t H) {
    const double last = chunk_gates(p, ch, h, H, b.data());
    for (int64_t i = 0; i < ch.len; ++i) {
      e_in[i] = flush(std::exp(b[i]));
      e_out[i] = flush(std::exp(last - b[i]));
      vs[i] = p.v_scale ? p.v_scale[(ch.row0 + i) * H + h] : T(1);
      fo[i] = e_out[i] * vs[i];
    }
    return last;
  }
  static T flush(double x) {
    return x < static_cast<double>(std::numeric_limits<T>::min()) ? T(0) : static_cast<T>(x);
  }
};

// dv_scale [B,T,H] from dvst and dskip[h] = Σ_rows dskt[row, h] (f64 per token row and head).
template <typename T>
void store_value_map_grads(const Args& a, const std::vector<double>& dvst, const std::vector<double>& dskt,
                           Grads& g) {
  const int64_t H = a.L.H, n = a.L.B * a.L.T * H;
  if (a.v_scale.defined()) {
    g.dv_scale = Tensor::empty(a.v_scale.shape(), a.v_scale.dtype());
    T* d = g.dv_scale.data<T>();
    for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(dvst[i]);
  }
  if (a.skip.defined()) {
    std::vector<double> sum(static_cast<size_t>(H), 0.0);
    for (int64_t i = 0; i < n; ++i) sum[i % H] += dskt[i];
    g.dskip = Tensor::empty({H}, a.skip.dtype());
    for (int64_t h = 0; h < H; ++h) g.dskip.data<T>()[h] = static_cast<T>(sum[h]);
  }
}

struct ChunkForward {
  Tensor o, final_state;
  Tensor states;  // [slots, H, K, V]: the state before every chunk (undefined when not needed)
  Tensor scores;  // [chunks, H, S, S]: each chunk's A (len × len, row-major), when kept
};

// keep: a backward will follow, so the states before every chunk and the intra-chunk scores
// are kept for it (the scores are S² numbers per chunk and head, a quarter of a state at
// S = 64, K = V = 128; recomputing them costs a GEMM and the decay mask per chunk).
//
// With at least as many (sequence, head) pairs as threads, each pair walks its chunks in one
// pass with its state in cache (outputs, then the state after the chunk), and the states go to
// memory only when kept. With fewer pairs, the three phases above spread the chunks over the
// threads instead.
template <typename T>
ChunkForward forward(const Args& a, const ChunkPlan& plan, int64_t S, bool keep) {
  const SequenceLayout& L = a.L;
  const int64_t H = L.H, K = L.K, V = L.V, HK = H * K, HV = H * V, KV = K * V;
  ChunkForward f;
  f.o = Tensor::empty({L.B, L.T, H, V}, a.q.dtype());
  f.final_state = Tensor::empty({L.N, H, K, V}, a.q.dtype());
  const bool one_pass = L.N * H >= num_threads();
  if (keep || !one_pass) f.states = Tensor::empty({plan.slots, H, K, V}, a.q.dtype());
  Ptrs<T> p(a);
  T* st = f.states.defined() ? f.states.data<T>() : nullptr;
  T* op = f.o.data<T>();
  T* fin = f.final_state.data<T>();
  const int64_t items = static_cast<int64_t>(plan.chunks.size()) * H;
  if (keep) f.scores = Tensor::empty({items, S, S}, a.q.dtype());
  T* kept = keep ? f.scores.data<T>() : nullptr;
  const T scale = static_cast<T>(a.scale);
  auto state_slot = [&](int64_t n, int64_t c, int64_t h) { return st + (plan.slot(n, c) * H + h) * KV; };
  // The chunk's own contribution Σ_j exp(b_last − b_j) k_j (vs_j v_j)ᵀ into dst (after s.gates).
  auto contribution = [&](Scratch<T>& s, const ChunkPlan::Chunk& ch, int64_t h, T* dst) {
    scale_rows(s.X.data(), p.k + (ch.row0 * H + h) * K, HK, ch.len, K, s.fo.data());
    gemm(T_, N_, K, V, ch.len, T(1), s.X.data(), K, p.v + (ch.row0 * H + h) * V, HV, T(0), dst, V);
  };
  // The chunk's outputs from the state before it (after s.gates; A: where its scores go).
  auto outputs = [&](Scratch<T>& s, const ChunkPlan::Chunk& ch, int64_t h, const T* Sprev, T* A) {
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
  };
  auto initial_state = [&](int64_t pair, T* dst) {
    if (p.h0) std::copy(p.h0 + pair * KV, p.h0 + (pair + 1) * KV, dst);
    else std::fill(dst, dst + KV, T(0));
  };
  if (one_pass) {
    parallel_for_weighted(L.N * H, [&](int64_t pair) { return plan.count(pair / H); }, [&](int64_t b, int64_t e) {
      Scratch<T> s(S, K, V);
      std::vector<T> add(static_cast<size_t>(KV));
      std::vector<T*> cur(static_cast<size_t>(e - b));  // each pair's state, updated in place if not kept
      int64_t chunks = 0;
      for (int64_t pair = b; pair < e; ++pair) {
        const int64_t n = pair / H, h = pair % H;
        cur[pair - b] = st ? state_slot(n, 0, h) : fin + pair * KV;
        initial_state(pair, cur[pair - b]);
        chunks = std::max(chunks, plan.count(n));
      }
      // Chunk by chunk over this thread's pairs: neighbouring heads' rows are neighbours in
      // memory, so the rows of one chunk stream in together.
      for (int64_t c = 0; c < chunks; ++c)
        for (int64_t pair = b; pair < e; ++pair) {
          const int64_t n = pair / H, h = pair % H;
          if (c >= plan.count(n)) continue;
          const int64_t it = (plan.first[n] + c) * H + h;
          const auto& ch = plan.chunks[plan.first[n] + c];
          const T decay = static_cast<T>(std::exp(s.gates(p, ch, h, H)));
          T*& state = cur[pair - b];
          contribution(s, ch, h, add.data());  // before outputs, which rescale e_in only
          outputs(s, ch, h, state, kept ? kept + it * S * S : s.A.data());
          T* next = st ? state_slot(n, c + 1, h) : state;
          for (int64_t x = 0; x < KV; ++x) next[x] = decay * state[x] + add[x];
          state = next;
        }
      if (st)
        for (int64_t pair = b; pair < e; ++pair) std::copy(cur[pair - b], cur[pair - b] + KV, fin + pair * KV);
    });
    return f;
  }
  // 1. Each chunk's own contribution, into the slot after it.
  parallel_for(items, 1, [&](int64_t b, int64_t e) {
    Scratch<T> s(S, K, V);
    for (int64_t it = b; it < e; ++it) {
      const auto& ch = plan.chunks[it / H];
      s.gates(p, ch, it % H, H);
      contribution(s, ch, it % H, state_slot(ch.n, ch.c + 1, it % H));
    }
  });
  // 2. The scan over chunks.
  parallel_for(L.N * H, 1, [&](int64_t b, int64_t e) {
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / H, h = pair % H;
      initial_state(pair, state_slot(n, 0, h));
      for (int64_t c = 0; c < plan.count(n); ++c) {
        const auto& ch = plan.chunks[plan.first[n] + c];
        double last = 0;
        for (int64_t i = 0; i < ch.len; ++i) last += p.gate(ch.row0 + i, h, H);
        const T decay = static_cast<T>(std::exp(last));
        const T* prev = state_slot(n, c, h);
        T* next = state_slot(n, c + 1, h);
        for (int64_t x = 0; x < KV; ++x) next[x] += decay * prev[x];
      }
      const T* last_state = state_slot(n, plan.count(n), h);
      std::copy(last_state, last_state + KV, fin + pair * KV);
    }
  });
  // 3. Outputs.
  parallel_for(items, 1, [&](int64_t b, int64_t e) {
    Scratch<T> s(S, K, V);
    for (int64_t it = b; it < e; ++it) {
      const auto& ch = plan.chunks[it / H];
      const int64_t h = it % H;
      s.gates(p, ch, h, H);
      outputs(s, ch, h, state_slot(ch.n, ch.c, h), kept ? kept + it * S * S : s.A.data());
    }
  });
  return f;
}

template <typename T>
Grads backward(const Args& a, const ChunkPlan& plan, int64_t S, const Tensor& states,
               const Tensor& scores, const Tensor& d_o, const Tensor& d_final) {
  const SequenceLayout& L = a.L;
  const int64_t H = L.H, K = L.K, V = L.V, HK = H * K, HV = H * V, KV = K * V;
  Grads g;
  g.dq = Tensor::empty(a.q.shape(), a.q.dtype());
  g.dk = Tensor::empty(a.k.shape(), a.k.dtype());
  g.dv = Tensor::empty(a.v.shape(), a.v.dtype());
  if (a.h0.defined()) g.dh0 = Tensor::empty(a.h0.shape(), a.h0.dtype());
  Ptrs<T> p(a);
  const T* st = states.data<T>();
  const T* kept = scores.data<T>();
  const T* dop = d_o.data<T>();
  const T* dFp = d_final.defined() ? d_final.data<T>() : nullptr;
  T* dh0 = g.dh0.defined() ? g.dh0.data<T>() : nullptr;
  const int64_t items = static_cast<int64_t>(plan.chunks.size()) * H;
  const T scale = static_cast<T>(a.scale);
  const bool want_gates = a.g.defined() || a.gamma.defined();
  std::vector<double> dgt(want_gates ? static_cast<size_t>(L.B * L.T * H) : 0, 0.0);
  // Per token row and head: ⟨v, dv_eff⟩ (the gradient of v_scale) and ⟨v, do⟩ (summed into
  // the gradient of skip).
  std::vector<double> dvst(p.v_scale ? static_cast<size_t>(L.B * L.T * H) : 0, 0.0);
  std::vector<double> dskt(p.skip ? static_cast<size_t>(L.B * L.T * H) : 0, 0.0);
  T *dqp = g.dq.data<T>(), *dkp = g.dk.data<T>(), *dvp = g.dv.data<T>();
  auto state_slot = [&](int64_t n, int64_t c, int64_t h) { return st + (plan.slot(n, c) * H + h) * KV; };
  // The chunk's reads of the state before it: dst = scale·Σ_i exp(b_i) q_i do_iᵀ (after
  // s.gates; rescales s.e_in).
  auto state_reads = [&](Scratch<T>& s, const ChunkPlan::Chunk& ch, int64_t h, T* dst) {
    for (int64_t i = 0; i < ch.len; ++i) s.e_in[i] *= scale;
    scale_rows(s.X.data(), p.q + (ch.row0 * H + h) * K, HK, ch.len, K, s.e_in.data());
    gemm(T_, N_, K, V, ch.len, T(1), s.X.data(), K, dop + (ch.row0 * H + h) * V, HV, T(0), dst, V);
  };
  struct GateScratch {
    std::vector<double> u, col;
    explicit GateScratch(int64_t S) : u(S), col(S) {}
  };
  // dq, dk, dv of the chunk and its gate gradients, from the state before it and the gradient
  // of the state after it (after s.gates, which returned b_last).
  auto chunk_grads = [&](Scratch<T>& s, GateScratch& gs, const ChunkPlan::Chunk& ch, int64_t h, int64_t it,
                         double b_last, const T* Sprev, const T* dSnext) {
    const int64_t len = ch.len;
    const int64_t qo = (ch.row0 * H + h) * K, vo = (ch.row0 * H + h) * V;
    const T *q = p.q + qo, *k = p.k + qo, *v = p.v + vo, *dO = dop + vo;
    T *dq = dqp + qo, *dk = dkp + qo, *dv = dvp + vo;
    std::vector<double>&u = gs.u, &col = gs.col;
    // A = scale·(Q Kᵀ) ⊙ D (kept by the forward) and dA = (dO Vᵀ) ⊙ D,
    // D_ij = exp(b_i − b_j) for j ≤ i.
    const T* A = kept + it * S * S;
    gemm(N_, T_, len, len, V, T(1), dO, HV, v, HV, T(0), s.dA.data(), len);
    if (want_gates) {
      // Intra-chunk part of dg_τ: Σ_{i≥τ} Σ_{j<τ} A_ij (dO Vᵀ)_ij, the pairs the gate of τ
      // stands between; col[j] = Σ_{i'≥i} of column j, built from the bottom row up.
      std::fill(col.begin(), col.begin() + len, 0.0);
      for (int64_t i = len - 1; i >= 0; --i) {
        const T* Ai = A + i * len;
        const T* Pi = s.dA.data() + i * len;
        double r = 0;
#pragma omp simd reduction(+ : r)
        for (int64_t j = 0; j < i; ++j) {
          col[j] += static_cast<double>(Ai[j] * Pi[j] * s.vs[j]);
          r += col[j];
        }
        u[i] = r;  // kept in u until the read terms are added
      }
    }
    decay_mask(s.dA.data(), s.b.data(), len, p.v_scale ? s.vs.data() : nullptr);
    // dq = scale·dA K + scale·diag(exp(b)) dO S_prevᵀ
    gemm(N_, N_, len, K, len, scale, s.dA.data(), len, k, HK, T(0), dq, HK);
    gemm(N_, T_, len, K, V, scale, dO, HV, Sprev, V, T(0), s.X.data(), K);
    add_scaled_rows(dq, HK, s.X.data(), len, K, s.e_in.data());
    if (want_gates) {
      // Reads of S_prev by queries i ≥ τ, and the chunk's keys j < τ (and S_prev) reaching
      // the state after the chunk: dg_τ = R_τ + Σ_{i≥τ} ρ_i + Σ_{j<τ} κ_j + exp(b_last)⟨S_prev, dS_next⟩.
      double tail = 0;
      for (int64_t i = len - 1; i >= 0; --i) {
        double dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t x = 0; x < K; ++x) dot += static_cast<double>(q[i * HK + x]) * s.X[i * K + x];
        tail += static_cast<double>(s.e_in[i]) * dot;
        u[i] += tail;
      }
    }
    // dk = scale·dAᵀ Q + diag(exp(b_last − b)) V dS_nextᵀ
    gemm(T_, N_, len, K, len, scale, s.dA.data(), len, q, HK, T(0), dk, HK);
    gemm(N_, T_, len, K, V, T(1), v, HV, dSnext, V, T(0), s.X.data(), K);
    add_scaled_rows(dk, HK, s.X.data(), len, K, s.fo.data());
    if (want_gates) {
      double through = 0;  // exp(b_last)·⟨S_prev, dS_next⟩
#pragma omp simd reduction(+ : through)
      for (int64_t x = 0; x < KV; ++x) through += static_cast<double>(Sprev[x]) * dSnext[x];
      through *= std::exp(b_last);
      double head = 0;
      for (int64_t j = 0; j < len; ++j) {
        dgt[(ch.row0 + j) * H + h] = u[j] + head + through;
        double dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t x = 0; x < K; ++x) dot += static_cast<double>(k[j * HK + x]) * s.X[j * K + x];
        head += static_cast<double>(s.fo[j]) * dot;
      }
    }
    // dv = Aᵀ dO + diag(exp(b_last − b)) K dS_next
    gemm(T_, N_, len, V, len, T(1), A, len, dO, HV, T(0), dv, HV);
    gemm(N_, N_, len, V, K, T(1), k, HK, dSnext, V, T(0), s.Y.data(), V);
    add_scaled_rows(dv, HV, s.Y.data(), len, V, s.e_out.data());
    if (p.v_scale || p.skip) {
      // dv holds the gradient of the effective value vs_j·v_j: dv_scale_j = ⟨v_j, dv_j⟩,
      // dv_j ← vs_j·dv_j (+ skip_h·do_j), and ⟨v_j, do_j⟩ for skip.
      for (int64_t j = 0; j < len; ++j) {
        const size_t row = static_cast<size_t>((ch.row0 + j) * H + h);
        T* dvj = dv + j * HV;
        const T *vj = v + j * HV, *doj = dO + j * HV;
        if (p.v_scale) {
          double dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t x = 0; x < V; ++x) dot += static_cast<double>(vj[x]) * dvj[x];
          dvst[row] = dot;
          for (int64_t x = 0; x < V; ++x) dvj[x] *= s.vs[j];
        }
        if (p.skip) {
          double dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t x = 0; x < V; ++x) dot += static_cast<double>(vj[x]) * doj[x];
          dskt[row] = dot;
          const T d = p.skip[h];
          for (int64_t x = 0; x < V; ++x) dvj[x] += d * doj[x];
        }
      }
    }
  };
  auto final_gradient = [&](int64_t pair, T* dst) {
    if (dFp) std::copy(dFp + pair * KV, dFp + (pair + 1) * KV, dst);
    else std::fill(dst, dst + KV, T(0));
  };

  if (L.N * H >= num_threads()) {
    // As the forward's one pass: each thread walks the chunks in reverse over its pairs, chunk
    // by chunk, with each pair's state gradient dS in cache.
    parallel_for_weighted(L.N * H, [&](int64_t pair) { return plan.count(pair / H); }, [&](int64_t b, int64_t e) {
      Scratch<T> s(S, K, V);
      GateScratch gs(S);
      std::vector<T> dS(static_cast<size_t>((e - b) * KV)), add(static_cast<size_t>(KV));
      int64_t chunks = 0;
      for (int64_t pair = b; pair < e; ++pair) {
        final_gradient(pair, dS.data() + (pair - b) * KV);
        chunks = std::max(chunks, plan.count(pair / H));
      }
      for (int64_t c = chunks - 1; c >= 0; --c)
        for (int64_t pair = b; pair < e; ++pair) {
          const int64_t n = pair / H, h = pair % H;
          if (c >= plan.count(n)) continue;
          const auto& ch = plan.chunks[plan.first[n] + c];
          T* dSp = dS.data() + (pair - b) * KV;
          const double b_last = s.gates(p, ch, h, H);
          chunk_grads(s, gs, ch, h, (plan.first[n] + c) * H + h, b_last, state_slot(n, c, h), dSp);
          state_reads(s, ch, h, add.data());  // after chunk_grads, which reads e_in unscaled
          const T decay = static_cast<T>(std::exp(b_last));
          for (int64_t x = 0; x < KV; ++x) dSp[x] = decay * dSp[x] + add[x];
        }
      if (dh0)
        for (int64_t pair = b; pair < e; ++pair)
          std::copy(dS.data() + (pair - b) * KV, dS.data() + (pair - b + 1) * KV, dh0 + pair * KV);
    });
    store_gate_grads(a, dgt, g);
    store_value_map_grads<T>(a, dvst, dskt, g);
    return g;
  }

  Tensor dstates = Tensor::empty({plan.slots, H, K, V}, a.q.dtype());  // gradients of the states
  T* dst = dstates.data<T>();
  auto dstate_slot = [&](int64_t n, int64_t c, int64_t h) { return dst + (plan.slot(n, c) * H + h) * KV; };
  // 1. Each chunk's reads of the state before it, into slot c.
  parallel_for(items, 1, [&](int64_t b, int64_t e) {
    Scratch<T> s(S, K, V);
    for (int64_t it = b; it < e; ++it) {
      const auto& ch = plan.chunks[it / H];
      s.gates(p, ch, it % H, H);
      state_reads(s, ch, it % H, dstate_slot(ch.n, ch.c, it % H));
    }
  });
  // 2. Reverse scan: slot c + 1 ends up holding the gradient of the state after chunk c,
  //    slot 0 that of the initial state.
  parallel_for(L.N * H, 1, [&](int64_t b, int64_t e) {
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / H, h = pair % H;
      final_gradient(pair, dstate_slot(n, plan.count(n), h));
      for (int64_t c = plan.count(n) - 1; c >= 0; --c) {
        const auto& ch = plan.chunks[plan.first[n] + c];
        double sum = 0;
        for (int64_t i = 0; i < ch.len; ++i) sum += p.gate(ch.row0 + i, h, H);
        const T decay = static_cast<T>(std::exp(sum));
        T* here = dstate_slot(n, c, h);
        const T* after = dstate_slot(n, c + 1, h);
        for (int64_t x = 0; x < KV; ++x) here[x] += decay * after[x];
      }
      if (dh0) std::copy(dstate_slot(n, 0, h), dstate_slot(n, 0, h) + KV, dh0 + pair * KV);
    }
  });
  // 3. dq, dk, dv per chunk, and the gate gradients.
  parallel_for(items, 1, [&](int64_t b, int64_t e) {
    Scratch<T> s(S, K, V);
    GateScratch gs(S);
    for (int64_t it = b; it < e; ++it) {
      const auto& ch = plan.chunks[it / H];
      const int64_t h = it % H;
      const double b_last = s.gates(p, ch, h, H);
      chunk_grads(s, gs, ch, h, it, b_last, state_slot(ch.n, ch.c, h), dstate_slot(ch.n, ch.c + 1, h));
    }
  });
  store_gate_grads(a, dgt, g);
  store_value_map_grads<T>(a, dvst, dskt, g);
  return g;
}

}  // namespace

MechanismOutputs simple_gla_chunk(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "simple_gla_chunk";
  check_chunk_size(op, opt.chunk_size);
  Args a = parse_args(op, in, opt, /*value_maps=*/true);
  const int64_t S = opt.chunk_size;
  auto plan = std::make_shared<ChunkPlan>(plan_chunks(a.L, S));
  const bool keep = wants_grad(in);
  return dispatch_float(a.q.dtype(), op, [&]<typename T>() {
    ChunkForward f = forward<T>(a, *plan, S, keep);
    Tensor states = f.states, scores = f.scores;
    return run_and_record(op, in, a, {f.o, f.final_state},
                          [plan, S, states, scores](const Args& a, const Tensor& d_o, const Tensor& d_final) {
                            return backward<T>(a, *plan, S, states, scores, d_o, d_final);
                          });
  });
}

}  // namespace lnx::kernels
