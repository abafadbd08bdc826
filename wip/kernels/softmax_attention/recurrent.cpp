// softmax_attention's recurrent form: decoding against a KV cache. Attention's "state" is its
// cache: every new query row attends to the cached keys of its sequence and to the new keys up
// to its own position (within the window), one row at a time, so any number of new tokens can
// be given at once (one token is the usual decoding step). extra_state returns the updated
// cache.
// Forward, per (sequence, head, query row), in two passes over the visible keys: the scores
// scale·q·k_j (dots in f64) and their maximum, then o = Σ_j exp(s_j − max) v_j / Σ_j exp(…);
// the row's log-sum-exp is saved for the backward.
// Backward (hand-written), parallel over (sequence, kv head), which owns the dk, dv rows of
// that kv head and the dq rows of its query heads: per query row i, with D_i = do_i·o_i,
//   p_j = exp(s_j − lse_i), ds_j = p_j (do_i·v_j − D_i),
//   dq_i += scale·Σ_j ds_j k_j,  dk_j += scale·ds_j q_i,  dv_j += p_j do_i.
#include <cmath>
#include <vector>

#include "kernels/softmax_attention/args.h"
#include "kernels/softmax_attention/softmax_attention.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels {

using namespace attention_detail;

namespace {

template <typename T> double dot(const T* a, const T* b, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t x = 0; x < n; ++x) s += static_cast<double>(a[x]) * static_cast<double>(b[x]);
  return s;
}

// The flat query rows of every sequence: (n, local index).
std::vector<std::pair<int64_t, int64_t>> query_rows(const Layout& L) {
  std::vector<std::pair<int64_t, int64_t>> rows;
  for (int64_t n = 0; n < L.N; ++n)
    for (int64_t i = 0; i < L.qlen(n); ++i) rows.push_back({n, i});
  return rows;
}

template <typename T>
Tensor forward(const Args& a, const Tensor& lse_out) {
  const Layout& L = a.L;
  const int64_t H = L.H, HK = L.HK, K = L.K, V = L.V, G = L.group();
  Tensor o = Tensor::empty({L.B, L.T, H, V}, a.qd.dtype());
  const T *q = a.qd.data<T>(), *k = a.kd.data<T>(), *v = a.vd.data<T>();
  T* op = o.data<T>();
  double* lse = lse_out.data<double>();
  const auto rows = query_rows(L);
  parallel_for_dynamic(static_cast<int64_t>(rows.size()) * H, 16, [&](int64_t b, int64_t e) {
    std::vector<double> s, acc(V);
    for (int64_t it = b; it < e; ++it) {
      const auto [n, i] = rows[it / H];
      const int64_t h = it % H, hk = h / G, r = L.qoff[n] + i;
      const T* qr = q + (r * H + h) * K;
      auto [lo, hi] = L.keys_of(i);
      s.resize(hi - lo);
      double mx = -INFINITY;
      for (int64_t j = lo; j < hi; ++j) {
        s[j - lo] = a.scale * dot(qr, k + ((L.koff[n] + j) * HK + hk) * K, K);
        mx = std::max(mx, s[j - lo]);
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      double l = 0;
      for (int64_t j = lo; j < hi; ++j) {
        const double p = std::exp(s[j - lo] - mx);
        l += p;
        const T* vj = v + ((L.koff[n] + j) * HK + hk) * V;
#pragma omp simd
        for (int64_t x = 0; x < V; ++x) acc[x] += p * static_cast<double>(vj[x]);
      }
      T* orow = op + (r * H + h) * V;
      for (int64_t x = 0; x < V; ++x) orow[x] = static_cast<T>(acc[x] / l);
      lse[r * H + h] = mx + std::log(l);
    }
  });
  return o;
}

template <typename T>
std::array<Tensor, 3> backward(const Args& a, const Tensor& o, const Tensor& lse_t, const Tensor& d_o) {
  const Layout& L = a.L;
  const int64_t H = L.H, HK = L.HK, K = L.K, V = L.V, G = L.group();
  const T *q = a.qd.data<T>(), *k = a.kd.data<T>(), *v = a.vd.data<T>();
  const T *dop = d_o.data<T>(), *opp = o.data<T>();
  const double* lse = lse_t.data<double>();
  Tensor dq = zeros(a.qd.shape(), a.qd.dtype()), dk = zeros(a.kd.shape(), a.kd.dtype()),
         dv = zeros(a.vd.shape(), a.vd.dtype());
  T *dqp = dq.data<T>(), *dkp = dk.data<T>(), *dvp = dv.data<T>();
  const T scale = static_cast<T>(a.scale);
  parallel_for_dynamic(L.N * HK, 1, [&](int64_t b, int64_t e) {
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / HK, hk = pair % HK;
      for (int64_t h = hk * G; h < (hk + 1) * G; ++h)
        for (int64_t i = 0; i < L.qlen(n); ++i) {
          const int64_t r = L.qoff[n] + i;
          const T *qr = q + (r * H + h) * K, *dor = dop + (r * H + h) * V;
          T* dqr = dqp + (r * H + h) * K;
          const double D = dot(dor, opp + (r * H + h) * V, V), m = lse[r * H + h];
          auto [lo, hi] = L.keys_of(i);
          for (int64_t j = lo; j < hi; ++j) {
            const int64_t kr = (L.koff[n] + j) * HK + hk;
            const T *kj = k + kr * K, *vj = v + kr * V;
            const double p = std::exp(a.scale * dot(qr, kj, K) - m);
            const T ds = static_cast<T>(p * (dot(dor, vj, V) - D)) * scale, pt = static_cast<T>(p);
            T *dkj = dkp + kr * K, *dvj = dvp + kr * V;
#pragma omp simd
            for (int64_t x = 0; x < K; ++x) {
              dqr[x] += ds * kj[x];
              dkj[x] += ds * qr[x];
            }
#pragma omp simd
            for (int64_t x = 0; x < V; ++x) dvj[x] += pt * dor[x];
          }
        }
    }
  });
  return {dq, dk, dv};
}

}  // namespace

MechanismOutputs softmax_attention_recurrent(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "softmax_attention_recurrent";
  Args a = parse_args(op, in, opt);
  return dispatch_float(a.qd.dtype(), op, [&]<typename T>() {
    Tensor lse = Tensor::empty({a.L.B * a.L.T, a.L.H}, DType::f64);
    Tensor o = forward<T>(a, lse);
    Tensor o_saved = o.detach();
    return run_and_record(op, a, o, [o_saved, lse](const Args& a, const Tensor& d_o) {
      return backward<T>(a, o_saved, lse, d_o);
    });
  });
}

}  // namespace lnx::kernels
