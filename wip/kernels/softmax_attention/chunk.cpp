// softmax_attention's chunk form: tiled attention with an online softmax (flash-attention
// style). Each sequence's queries are cut into blocks of S rows and its keys (cache first) into
// blocks of S keys; a [S, S] tile of scores is the most that ever exists, so memory is linear
// in T. Query i of a sequence sees the keys [lo_i, hi_i) of Layout::keys_of, a contiguous band,
// so masking a tile is a per-row column range.
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

#include "kernels/softmax_attention/args.h"
#include "kernels/softmax_attention/softmax_attention.h"
#include "tensor/cpu/blas.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels {

using namespace attention_detail;

namespace {

constexpr Transpose N_ = Transpose::No, T_ = Transpose::Yes;

// Blocks of up to S rows of each sequence's queries (or keys): (n, first row, rows).
struct Block {
  int64_t n, i0, len;
};

std::vector<Block> blocks(const std::vector<int64_t>& off, int64_t S) {
  std::vector<Block> out;
  for (size_t n = 0; n + 1 < off.size(); ++n)
    for (int64_t i = 0; i < off[n + 1] - off[n]; i += S)
      out.push_back({static_cast<int64_t>(n), i, std::min(S, off[n + 1] - off[n] - i)});
  return out;
}

// The columns [c0, c1) of a tile with keys j0 .. j0 + jlen that query i sees.
inline std::pair<int64_t, int64_t> tile_columns(const Layout& L, int64_t i, int64_t j0, int64_t jlen) {
  auto [lo, hi] = L.keys_of(i);
  const int64_t c0 = std::max<int64_t>(lo - j0, 0), c1 = std::min<int64_t>(hi - j0, jlen);
  return {c0, std::max(c0, c1)};
}

template <typename T> struct Tile {
  std::vector<T> S, dP, O;
  std::vector<double> m, l;
  Tile(int64_t bs, int64_t V) : S(bs * bs), dP(bs * bs), O(bs * V), m(bs), l(bs) {}
};

// P = exp(S − lse_i) on the visible columns of a tile of rows i0 .. i0 + ilen, 0 elsewhere.
template <typename T>
void probabilities(const Layout& L, T* S, int64_t i0, int64_t ilen, int64_t j0, int64_t jlen,
                   const double* lse, int64_t lse_stride) {
  for (int64_t i = 0; i < ilen; ++i) {
    T* Si = S + i * jlen;
    const auto cols = tile_columns(L, i0 + i, j0, jlen);
    const int64_t c0 = cols.first, c1 = cols.second;
    const T shift = static_cast<T>(lse[i * lse_stride]);
    for (int64_t c = 0; c < c0; ++c) Si[c] = T(0);
    for (int64_t c = c0; c < c1; ++c) Si[c] = fast_exp(Si[c] - shift);
    for (int64_t c = c1; c < jlen; ++c) Si[c] = T(0);
  }
}

template <typename T>
Tensor forward(const Args& a, int64_t bs, const Tensor& lse_out) {
  const Layout& L = a.L;
  const int64_t H = L.H, K = L.K, V = L.V, G = L.group();
  const int64_t ldq = H * K, ldk = L.HK * K, ldv = L.HK * V;
  Tensor o = Tensor::empty({L.B, L.T, H, V}, a.qd.dtype());
  const T *q = a.qd.data<T>(), *k = a.kd.data<T>(), *v = a.vd.data<T>();
  T* op = o.data<T>();
  double* lse = lse_out.data<double>();
  const std::vector<Block> qb = blocks(L.qoff, bs);
  const T scale = static_cast<T>(a.scale);
  constexpr double ninf = -std::numeric_limits<double>::infinity();
  parallel_for_dynamic(static_cast<int64_t>(qb.size()) * H, 1, [&](int64_t b, int64_t e) {
    Tile<T> t(bs, V);
    for (int64_t it = b; it < e; ++it) {
      const Block& blk = qb[it / H];
      const int64_t h = it % H, hk = h / G, n = blk.n, ilen = blk.len, r0 = L.qoff[n] + blk.i0;
      const T* Q = q + (r0 * H + h) * K;
      std::fill(t.O.begin(), t.O.begin() + ilen * V, T(0));
      std::fill(t.m.begin(), t.m.end(), ninf);
      std::fill(t.l.begin(), t.l.end(), 0.0);
      const int64_t lo = L.keys_of(blk.i0).first, hi = L.keys_of(blk.i0 + ilen - 1).second;
      for (int64_t j0 = lo; j0 < hi; j0 += bs) {
        const int64_t jlen = std::min(bs, hi - j0), kr0 = L.koff[n] + j0;
        gemm(N_, T_, ilen, jlen, K, scale, Q, ldq, k + (kr0 * L.HK + hk) * K, ldk, T(0), t.S.data(), jlen);
        for (int64_t i = 0; i < ilen; ++i) {
          T* Si = t.S.data() + i * jlen;
          const auto cols = tile_columns(L, blk.i0 + i, j0, jlen);
          const int64_t c0 = cols.first, c1 = cols.second;
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
        gemm(N_, N_, ilen, V, jlen, T(1), t.S.data(), jlen, v + (kr0 * L.HK + hk) * V, ldv, T(1),
             t.O.data(), V);
      }
      for (int64_t i = 0; i < ilen; ++i) {
        const T inv = static_cast<T>(1.0 / t.l[i]);
        T* orow = op + ((r0 + i) * H + h) * V;
        for (int64_t x = 0; x < V; ++x) orow[x] = t.O[i * V + x] * inv;
        lse[(r0 + i) * H + h] = t.m[i] + std::log(t.l[i]);
      }
    }
  });
  return o;
}

template <typename T>
std::array<Tensor, 3> backward(const Args& a, int64_t bs, const Tensor& o, const Tensor& lse_t,
                               const Tensor& d_o) {
  const Layout& L = a.L;
  const int64_t H = L.H, HK = L.HK, K = L.K, V = L.V, G = L.group();
  const int64_t ldq = H * K, ldk = HK * K, ldv = HK * V, ldo = H * V;
  const T *q = a.qd.data<T>(), *k = a.kd.data<T>(), *v = a.vd.data<T>();
  const T *dop = d_o.data<T>(), *opp = o.data<T>();
  const double* lse = lse_t.data<double>();
  Tensor dq = zeros(a.qd.shape(), a.qd.dtype()), dk = zeros(a.kd.shape(), a.kd.dtype()),
         dv = zeros(a.vd.shape(), a.vd.dtype());
  T *dqp = dq.data<T>(), *dkp = dk.data<T>(), *dvp = dv.data<T>();
  const T scale = static_cast<T>(a.scale);
  // D = rowsum(do ⊙ o) per (row, head).
  const int64_t rows = L.B * L.T;
  std::vector<T> D(static_cast<size_t>(rows * H));
  parallel_for(rows * H, 256, [&](int64_t b, int64_t e) {
    for (int64_t x = b; x < e; ++x) {
      double s = 0;
      for (int64_t c = 0; c < V; ++c) s += static_cast<double>(dop[x * V + c]) * opp[x * V + c];
      D[x] = static_cast<T>(s);
    }
  });
  // dS = P ⊙ (dP − D_i) in place of dP, for a tile of queries i0 .. whose P is in S. A query
  // that sees a single key (the first token, window 1) gets exactly 0: its softmax is constant,
  // and dP − D would leave rounding noise where the gradient is 0.
  auto ds = [&](Tile<T>& t, int64_t r0, int64_t i0, int64_t h, int64_t ilen, int64_t jlen) {
    for (int64_t i = 0; i < ilen; ++i) {
      const T d = D[(r0 + i) * H + h];
      T *Pi = t.S.data() + i * jlen, *dPi = t.dP.data() + i * jlen;
      const auto keys = L.keys_of(i0 + i);
      if (keys.second - keys.first == 1) {
        std::fill(dPi, dPi + jlen, T(0));
        continue;
      }
#pragma omp simd
      for (int64_t c = 0; c < jlen; ++c) dPi[c] = Pi[c] * (dPi[c] - d);
    }
  };
  // dq pass.
  const std::vector<Block> qb = blocks(L.qoff, bs);
  parallel_for_dynamic(static_cast<int64_t>(qb.size()) * H, 1, [&](int64_t b, int64_t e) {
    Tile<T> t(bs, V);
    for (int64_t it = b; it < e; ++it) {
      const Block& blk = qb[it / H];
      const int64_t h = it % H, hk = h / G, n = blk.n, ilen = blk.len, r0 = L.qoff[n] + blk.i0;
      const T *Q = q + (r0 * H + h) * K, *dO = dop + (r0 * H + h) * V;
      T* dQ = dqp + (r0 * H + h) * K;
      const int64_t lo = L.keys_of(blk.i0).first, hi = L.keys_of(blk.i0 + ilen - 1).second;
      for (int64_t j0 = lo; j0 < hi; j0 += bs) {
        const int64_t jlen = std::min(bs, hi - j0), kr0 = L.koff[n] + j0;
        const T *Kb = k + (kr0 * HK + hk) * K, *Vb = v + (kr0 * HK + hk) * V;
        gemm(N_, T_, ilen, jlen, K, scale, Q, ldq, Kb, ldk, T(0), t.S.data(), jlen);
        probabilities(L, t.S.data(), blk.i0, ilen, j0, jlen, lse + r0 * H + h, H);
        gemm(N_, T_, ilen, jlen, V, T(1), dO, ldo, Vb, ldv, T(0), t.dP.data(), jlen);
        ds(t, r0, blk.i0, h, ilen, jlen);
        gemm(N_, N_, ilen, K, jlen, scale, t.dP.data(), jlen, Kb, ldk, T(1), dQ, ldq);
      }
    }
  });
  // dk/dv pass.
  const std::vector<Block> kb = blocks(L.koff, bs);
  parallel_for_dynamic(static_cast<int64_t>(kb.size()) * HK, 1, [&](int64_t b, int64_t e) {
    Tile<T> t(bs, V);
    for (int64_t it = b; it < e; ++it) {
      const Block& blk = kb[it / HK];
      const int64_t hk = it % HK, n = blk.n, j0 = blk.i0, jlen = blk.len, kr0 = L.koff[n] + j0;
      const T *Kb = k + (kr0 * HK + hk) * K, *Vb = v + (kr0 * HK + hk) * V;
      T *dK = dkp + (kr0 * HK + hk) * K, *dV = dvp + (kr0 * HK + hk) * V;
      const int64_t qlen = L.qlen(n);
      const int64_t lo = L.queries_of(j0, qlen).first, hi = L.queries_of(j0 + jlen - 1, qlen).second;
      for (int64_t h = hk * G; h < (hk + 1) * G; ++h)
        for (int64_t i0 = lo; i0 < hi; i0 += bs) {
          const int64_t ilen = std::min(bs, hi - i0), r0 = L.qoff[n] + i0;
          const T *Q = q + (r0 * H + h) * K, *dO = dop + (r0 * H + h) * V;
          gemm(N_, T_, ilen, jlen, K, scale, Q, ldq, Kb, ldk, T(0), t.S.data(), jlen);
          probabilities(L, t.S.data(), i0, ilen, j0, jlen, lse + r0 * H + h, H);
          gemm(N_, T_, ilen, jlen, V, T(1), dO, ldo, Vb, ldv, T(0), t.dP.data(), jlen);
          ds(t, r0, i0, h, ilen, jlen);
          gemm(T_, N_, jlen, V, ilen, T(1), t.S.data(), jlen, dO, ldo, T(1), dV, ldv);
          gemm(T_, N_, jlen, K, ilen, scale, t.dP.data(), jlen, Q, ldq, T(1), dK, ldk);
        }
    }
  });
  return {dq, dk, dv};
}

}  // namespace

MechanismOutputs softmax_attention_chunk(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "softmax_attention_chunk";
  check_chunk_size(op, opt.chunk_size);
  Args a = parse_args(op, in, opt);
  const int64_t bs = opt.chunk_size;
  return dispatch_float(a.qd.dtype(), op, [&]<typename T>() {
    Tensor lse = Tensor::empty({a.L.B * a.L.T, a.L.H}, DType::f64);
    Tensor o = forward<T>(a, bs, lse);
    Tensor o_saved = o.detach();
    return run_and_record(op, a, o, [bs, o_saved, lse](const Args& a, const Tensor& d_o) {
      return backward<T>(a, bs, o_saved, lse, d_o);
    });
  });
}

}  // namespace lnx::kernels
