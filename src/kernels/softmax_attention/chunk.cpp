// softmax_attention's chunk primitive: tiled attention with an online softmax (flash-attention
// style). Each sequence's queries are cut into blocks of S rows (the call's ChunkPlan) and its
// keys (cache first) into blocks of S keys (a ChunkPlan over the key buffer); a [S, S] tile of
// scores is the most that ever exists, so memory is linear in T. Query i of a sequence sees the
// keys [lo_i, hi_i) of Layout::keys_of, a contiguous band, so masking a tile is a per-row
// column range.
//
// Forward, parallel over (sequence, head, query block): for every key block in the band,
//   S = scale·Q Kᵀ (GEMM), per row m' = max(m, max_j S_ij), P = exp(S − m'),
//   l ← l·exp(m − m') + Σ_j P_ij,  O ← O·exp(m − m') + P V (GEMM);
// then o = O / l, and the row's log-sum-exp m + log l is saved (f64) for the backward.
// Backward (D_i = do_i·o_i; P = exp(S − lse) recomputed from q, k; dS = P ⊙ (dO Vᵀ − D)):
//   dq pass, parallel over (sequence, head, query block): dq = scale·Σ_blocks dS K;
//   dk/dv pass, parallel over (sequence, kv head, key block): for every query head of the
//   group and every query block that sees the key block, dv += Pᵀ dO, dk += scale·dSᵀ Q.
// Each work item owns the rows it writes, so there are no races; GEMMs run on the token rows
// in place (leading dimensions H·K, HK·K, …) through lnx::gemm inside parallel regions.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/common/kernel_math.h"
#include "kernels/softmax_attention/softmax_attention_internal.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels::softmax_attention_detail {

namespace {

constexpr Transpose N_ = kNoTrans, T_ = kTrans;
using Chunk = ChunkPlan::Chunk;

// Per-thread scratch: a tile of scores (or probabilities) S, its gradient dP, and the running
// output O, maximum m and sum l of a block of query rows.
template <typename T> struct Tile {
  std::vector<T> S, dP, O;
  std::vector<double> m, l;
  Tile(int64_t bs, int64_t V) : S(bs * bs), dP(bs * bs), O(bs * V), m(bs), l(bs) {}
};

// The inputs, the layout and the tile operations of both passes. A block of queries is a
// chunk of the plan (local rows i0 .. i0 + ilen of sequence n); a tile is its scores against
// the keys j0 .. j0 + jlen of the same sequence.
template <typename T> struct Tiles {
  const Layout L;
  const ChunkPlan& plan;
  const T *q, *k, *v;                // q [B·T, H, K], k [R, HK, K], v [R, HK, V]
  const int64_t H, HK, K, V, G, bs;  // G = H / HK query heads per kv head
  const int64_t ldq, ldk, ldv, ldo;  // row strides of q, k, v and o
  const T scale;
  const T *dop = nullptr, *D = nullptr;  // backward: do [B·T, H, V], D = rowsum(do ⊙ o) [B·T, H]
  const double* lse = nullptr;           // log-sum-exp of every query row [B·T, H]

  explicit Tiles(const KernelArgs& a)
      : L(a),
        plan(a.chunks()),
        q(a.ptr<T>("q")),
        k(a.ptr<T>("keys")),
        v(a.ptr<T>("values")),
        H(L.H),
        HK(L.HK),
        K(L.K),
        V(L.V),
        G(L.group()),
        bs(plan.size),
        ldq(H * K),
        ldk(HK * K),
        ldv(HK * V),
        ldo(H * V),
        scale(static_cast<T>(a.scale)) {}

  // The columns [c0, c1) of a tile with keys j0 .. j0 + jlen that query i sees.
  std::pair<int64_t, int64_t> tile_columns(int64_t i, int64_t j0, int64_t jlen) const {
    auto [lo, hi] = L.keys_of(i);
    const int64_t c0 = std::max<int64_t>(lo - j0, 0), c1 = std::min<int64_t>(hi - j0, jlen);
    return {c0, std::max(c0, c1)};
  }
  // The keys [lo, hi) queries i0 .. i0 + ilen see together.
  std::pair<int64_t, int64_t> key_band(int64_t i0, int64_t ilen) const {
    return {L.keys_of(i0).first, L.keys_of(i0 + ilen - 1).second};
  }
  // t.S = scale·Q Kᵀ for query rows r0 .. r0 + ilen of head h and key rows kr0 .. kr0 + jlen of its kv head.
  void scores(Tile<T>& t, int64_t r0, int64_t h, int64_t ilen, int64_t kr0, int64_t jlen) const {
    gemm(N_, T_, ilen, jlen, K, scale, q + (r0 * H + h) * K, ldq, k + (kr0 * HK + h / G) * K, ldk, T(0), t.S.data(),
         jlen);
  }

  // ---- forward ----

  // One tile of the online softmax: masks t.S, turns it into exp(S − m'), and rescales what
  // rows i0 .. i0 + ilen accumulated under their old maximum.
  void online_softmax(Tile<T>& t, int64_t i0, int64_t ilen, int64_t j0, int64_t jlen) const {
    for (int64_t i = 0; i < ilen; ++i) {
      T* Si = t.S.data() + i * jlen;
      const auto columns = tile_columns(i0 + i, j0, jlen);    // not a structured binding: clang 14's
      const int64_t c0 = columns.first, c1 = columns.second;  // omp simd cannot capture one
      for (int64_t c = 0; c < c0; ++c) Si[c] = T(0);
      for (int64_t c = c1; c < jlen; ++c) Si[c] = T(0);
      if (c0 == c1) continue;
      T mx = Si[c0];
      for (int64_t c = c0 + 1; c < c1; ++c) mx = Si[c] > mx ? Si[c] : mx;
      const double m_new = std::max(t.m[i], static_cast<double>(mx));
      const T shift = static_cast<T>(m_new);
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = c0; c < c1; ++c) {
        Si[c] = fast_exp(Si[c] - shift);
        sum += Si[c];
      }
      if (m_new > t.m[i]) {  // rescale what was accumulated under the old maximum
        const double corr = std::exp(t.m[i] - m_new);
        t.l[i] *= corr;
        T* Oi = t.O.data() + i * V;
        for (int64_t x = 0; x < V; ++x) Oi[x] *= static_cast<T>(corr);
        t.m[i] = m_new;
      }
      t.l[i] += static_cast<double>(sum);
    }
  }
  // The outputs of one query block and head, and their log-sum-exp.
  void query_block(Tile<T>& t, const Chunk& ch, int64_t h, T* o, double* lse_out) const {
    const int64_t i0 = ch.row0 - L.qoff[ch.n], ilen = ch.len, r0 = ch.row0;
    std::fill(t.O.begin(), t.O.begin() + ilen * V, T(0));
    std::fill(t.m.begin(), t.m.end(), -std::numeric_limits<double>::infinity());
    std::fill(t.l.begin(), t.l.end(), 0.0);
    const auto [lo, hi] = key_band(i0, ilen);
    for (int64_t j0 = lo; j0 < hi; j0 += bs) {
      const int64_t jlen = std::min(bs, hi - j0), kr0 = L.koff[ch.n] + j0;
      scores(t, r0, h, ilen, kr0, jlen);
      online_softmax(t, i0, ilen, j0, jlen);
      gemm(N_, N_, ilen, V, jlen, T(1), t.S.data(), jlen, v + (kr0 * HK + h / G) * V, ldv, T(1), t.O.data(), V);
    }
    for (int64_t i = 0; i < ilen; ++i) {
      const T inv = static_cast<T>(1.0 / t.l[i]);
      T* orow = o + ((r0 + i) * H + h) * V;
      for (int64_t x = 0; x < V; ++x) orow[x] = t.O[i * V + x] * inv;
      lse_out[(r0 + i) * H + h] = t.m[i] + std::log(t.l[i]);
    }
  }

  // ---- backward ----

  // t.S ← P = exp(S − lse_i) on the visible columns of rows i0 .. i0 + ilen (rows r0 ..), 0
  // elsewhere; t.dP ← dS = P ⊙ (dO Vᵀ − D_i). A query that sees a single key (the first token,
  // window 1) gets exactly 0: its softmax is constant, and dP − D would leave rounding noise
  // where the gradient is 0.
  void probabilities_and_grads(Tile<T>& t, int64_t r0, int64_t i0, int64_t h, int64_t ilen, int64_t kr0, int64_t j0,
                               int64_t jlen) const {
    scores(t, r0, h, ilen, kr0, jlen);
    gemm(N_, T_, ilen, jlen, V, T(1), dop + (r0 * H + h) * V, ldo, v + (kr0 * HK + h / G) * V, ldv, T(0), t.dP.data(),
         jlen);
    for (int64_t i = 0; i < ilen; ++i) {
      T *Si = t.S.data() + i * jlen, *dPi = t.dP.data() + i * jlen;
      const auto [c0, c1] = tile_columns(i0 + i, j0, jlen);
      const T shift = static_cast<T>(lse[(r0 + i) * H + h]);
      for (int64_t c = 0; c < c0; ++c) Si[c] = T(0);
      for (int64_t c = c0; c < c1; ++c) Si[c] = fast_exp(Si[c] - shift);
      for (int64_t c = c1; c < jlen; ++c) Si[c] = T(0);
      const auto keys = L.keys_of(i0 + i);
      if (keys.second - keys.first == 1) {
        std::fill(dPi, dPi + jlen, T(0));
        continue;
      }
      const T d = D[(r0 + i) * H + h];
#pragma omp simd
      for (int64_t c = 0; c < jlen; ++c) dPi[c] = Si[c] * (dPi[c] - d);
    }
  }
  // dq of one query block and head: scale·Σ_blocks dS K.
  void dq_block(Tile<T>& t, const Chunk& ch, int64_t h, T* dq) const {
    const int64_t i0 = ch.row0 - L.qoff[ch.n], ilen = ch.len, r0 = ch.row0;
    const auto [lo, hi] = key_band(i0, ilen);
    for (int64_t j0 = lo; j0 < hi; j0 += bs) {
      const int64_t jlen = std::min(bs, hi - j0), kr0 = L.koff[ch.n] + j0;
      probabilities_and_grads(t, r0, i0, h, ilen, kr0, j0, jlen);
      gemm(N_, N_, ilen, K, jlen, scale, t.dP.data(), jlen, k + (kr0 * HK + h / G) * K, ldk, T(1),
           dq + (r0 * H + h) * K, ldq);
    }
  }
  // dk, dv of one key block (keys j0 .. j0 + jlen of sequence n) and kv head: over every query
  // head of the group and every query block that sees it, dv += Pᵀ dO, dk += scale·dSᵀ Q.
  void dkdv_block(Tile<T>& t, const Chunk& kb, int64_t hk, T* dk, T* dv) const {
    const int64_t n = kb.n, j0 = kb.row0 - L.koff[n], jlen = kb.len, kr0 = kb.row0;
    const int64_t lo = L.queries_of(j0, L.qlen(n)).first, hi = L.queries_of(j0 + jlen - 1, L.qlen(n)).second;
    for (int64_t h = hk * G; h < (hk + 1) * G; ++h)
      for (int64_t i0 = lo; i0 < hi; i0 += bs) {
        const int64_t ilen = std::min(bs, hi - i0), r0 = L.qoff[n] + i0;
        probabilities_and_grads(t, r0, i0, h, ilen, kr0, j0, jlen);
        gemm(T_, N_, jlen, V, ilen, T(1), t.S.data(), jlen, dop + (r0 * H + h) * V, ldo, T(1), dv + (kr0 * HK + hk) * V,
             ldv);
        gemm(T_, N_, jlen, K, ilen, scale, t.dP.data(), jlen, q + (r0 * H + h) * K, ldq, T(1), dk + (kr0 * HK + hk) * K,
             ldk);
      }
  }
};

// D = rowsum(do ⊙ o) per (row, head), summed in f64.
template <typename T> std::vector<T> output_dots(const T* dop, const T* o, int64_t rows_heads, int64_t V) {
  std::vector<T> D(static_cast<size_t>(rows_heads));
  parallel_for(rows_heads, 256, [&](int64_t b, int64_t e) {
    for (int64_t x = b; x < e; ++x) D[x] = static_cast<T>(dot_f64(dop + x * V, o + x * V, V));
  });
  return D;
}

struct TiledAttention {
  // Saved: "o" and "lse" (f64 [B·T, H]).
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    const Tiles<T> w(a);
    const RowOutputs out(a);
    T* o = out.o.data<T>();
    double* lse = out.lse.data<double>();
    parallel_for_dynamic(w.plan.total() * w.H, 1, [&](int64_t b, int64_t e) {
      Tile<T> t(w.bs, w.V);
      for (int64_t it = b; it < e; ++it) w.query_block(t, w.plan.chunks[it / w.H], it % w.H, o, lse);
    });
    return out.keep(saved);
  }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor&) {
    Tiles<T> w(a);
    const std::vector<T> D = output_dots(d_o.data<T>(), saved.at("o").data<T>(), a.L.B * a.L.T * w.H, w.V);
    w.dop = d_o.data<T>(), w.D = D.data(), w.lse = saved.at("lse").data<double>();
    TensorDict g = zero_grads(a);
    T *dq = g["q"].data<T>(), *dk = g["keys"].data<T>(), *dv = g["values"].data<T>();
    parallel_for_dynamic(w.plan.total() * w.H, 1, [&](int64_t b, int64_t e) {
      Tile<T> t(w.bs, w.V);
      for (int64_t it = b; it < e; ++it) w.dq_block(t, w.plan.chunks[it / w.H], it % w.H, dq);
    });
    const ChunkPlan key_blocks = ChunkPlan::make(w.L.keys(), w.bs);
    parallel_for_dynamic(key_blocks.total() * w.HK, 1, [&](int64_t b, int64_t e) {
      Tile<T> t(w.bs, w.V);
      for (int64_t it = b; it < e; ++it) w.dkdv_block(t, key_blocks.chunks[it / w.HK], it % w.HK, dk, dv);
    });
    return g;
  }
};

}  // namespace

const Primitive& chunk_primitive() {
  static const Primitive p = make_primitive<TiledAttention>("softmax_attention_chunk", kernel_specs(), true);
  return p;
}

}  // namespace lnx::kernels::softmax_attention_detail
