// softmax_attention's recurrent primitive: decoding against a KV cache. Attention's "state" is
// its cache: every new query row attends to the cached keys of its sequence and to the new keys
// up to its own position (within the window), one row at a time, so any number of new tokens
// can be given at once (one token is the usual decoding step).
// Forward, per (sequence, head, query row), in two passes over the visible keys: the scores
// scale·q·k_j (dots in f64) and their maximum, then o = Σ_j exp(s_j − max) v_j / Σ_j exp(…);
// the row's log-sum-exp is saved for the backward.
// Backward (hand-written), parallel over (sequence, kv head), which owns the dk, dv rows of
// that kv head and the dq rows of its query heads: per query row i, with D_i = do_i·o_i,
//   p_j = exp(s_j − lse_i), ds_j = p_j (do_i·v_j − D_i),
//   dq_i += scale·Σ_j ds_j k_j,  dk_j += scale·ds_j q_i,  dv_j += p_j do_i.
#include <cmath>
#include <vector>

#include "kernels/common/kernel_math.h"
#include "kernels/softmax_attention/softmax_attention_internal.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels::softmax_attention_detail {

namespace {

// The inputs and the layout; query rows are (sequence n, local index i), key rows of kv head
// hk live at (koff[n] + j)·HK + hk.
template <typename T> struct Rows {
  const Layout L;
  const T *q, *k, *v;  // q [B·T, H, K], k [R, HK, K], v [R, HK, V]
  const int64_t H, HK, K, V, G;
  const double scale;

  explicit Rows(const KernelArgs& a)
      : L(a),
        q(a.ptr<T>("q")),
        k(a.ptr<T>("keys")),
        v(a.ptr<T>("values")),
        H(L.H),
        HK(L.HK),
        K(L.K),
        V(L.V),
        G(L.group()),
        scale(a.scale) {}
  int64_t key_row(int64_t n, int64_t j, int64_t hk) const { return (L.koff[n] + j) * HK + hk; }

  // The output of query i of sequence n, head h, into o; returns its log-sum-exp. s, acc: scratch.
  double row(int64_t n, int64_t i, int64_t h, T* o, std::vector<double>& s, std::vector<double>& acc) const {
    const int64_t r = L.qoff[n] + i, hk = h / G;
    const T* qr = q + (r * H + h) * K;
    const auto [lo, hi] = L.keys_of(i);
    s.resize(hi - lo);
    double mx = -INFINITY;
    for (int64_t j = lo; j < hi; ++j) {
      s[j - lo] = scale * dot_f64(qr, k + key_row(n, j, hk) * K, K);
      mx = std::max(mx, s[j - lo]);
    }
    std::fill(acc.begin(), acc.end(), 0.0);
    double l = 0;
    for (int64_t j = lo; j < hi; ++j) {
      const double p = std::exp(s[j - lo] - mx);
      l += p;
      const T* vj = v + key_row(n, j, hk) * V;
#pragma omp simd
      for (int64_t x = 0; x < V; ++x) acc[x] += p * static_cast<double>(vj[x]);
    }
    T* orow = o + (r * H + h) * V;
    for (int64_t x = 0; x < V; ++x) orow[x] = static_cast<T>(acc[x] / l);
    return mx + std::log(l);
  }

  // The gradients of query i of sequence n, head h (given do and o of the row and its lse):
  // into its dq row and the dk, dv rows of the keys it sees.
  void row_grads(int64_t n, int64_t i, int64_t h, const T* dop, const T* o, double lse, T* dq, T* dk, T* dv) const {
    const int64_t r = L.qoff[n] + i, hk = h / G;
    const T *qr = q + (r * H + h) * K, *dor = dop + (r * H + h) * V;
    T* dqr = dq + (r * H + h) * K;
    const double D = dot_f64(dor, o + (r * H + h) * V, V);
    const T scale_t = static_cast<T>(scale);
    const auto [lo, hi] = L.keys_of(i);
    for (int64_t j = lo; j < hi; ++j) {
      const int64_t kr = key_row(n, j, hk);
      const T *kj = k + kr * K, *vj = v + kr * V;
      const double p = std::exp(scale * dot_f64(qr, kj, K) - lse);
      const T ds = static_cast<T>(p * (dot_f64(dor, vj, V) - D)) * scale_t, pt = static_cast<T>(p);
      T *dkj = dk + kr * K, *dvj = dv + kr * V;
#pragma omp simd
      for (int64_t x = 0; x < K; ++x) {
        dqr[x] += ds * kj[x];
        dkj[x] += ds * qr[x];
      }
#pragma omp simd
      for (int64_t x = 0; x < V; ++x) dvj[x] += pt * dor[x];
    }
  }
};

// The flat query rows of every sequence: (n, local index).
std::vector<std::pair<int64_t, int64_t>> query_rows(const Layout& L) {
  std::vector<std::pair<int64_t, int64_t>> rows;
  for (int64_t n = 0; n < L.N; ++n)
    for (int64_t i = 0; i < L.qlen(n); ++i) rows.push_back({n, i});
  return rows;
}

struct RowByRow {
  // Saved: "o" and "lse" (f64 [B·T, H]).
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    const Rows<T> w(a);
    const RowOutputs out(a);
    T* o = out.o.data<T>();
    double* lse = out.lse.data<double>();
    const auto rows = query_rows(w.L);
    parallel_for_dynamic(static_cast<int64_t>(rows.size()) * w.H, 16, [&](int64_t b, int64_t e) {
      std::vector<double> s, acc(w.V);
      for (int64_t it = b; it < e; ++it) {
        const auto [n, i] = rows[it / w.H];
        const int64_t h = it % w.H;
        lse[(w.L.qoff[n] + i) * w.H + h] = w.row(n, i, h, o, s, acc);
      }
    });
    return out.keep(saved);
  }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor&) {
    const Rows<T> w(a);
    const TensorDict g = zero_grads(a);
    T *dq = g["q"].data<T>(), *dk = g["keys"].data<T>(), *dv = g["values"].data<T>();
    const T *dop = d_o.data<T>(), *o = saved.at("o").data<T>();
    const double* lse = saved.at("lse").data<double>();
    parallel_for_dynamic(w.L.N * w.HK, 1, [&](int64_t b, int64_t e) {
      for (int64_t pair = b; pair < e; ++pair) {
        const int64_t n = pair / w.HK, hk = pair % w.HK;
        for (int64_t h = hk * w.G; h < (hk + 1) * w.G; ++h)
          for (int64_t i = 0; i < w.L.qlen(n); ++i)
            w.row_grads(n, i, h, dop, o, lse[(w.L.qoff[n] + i) * w.H + h], dq, dk, dv);
      }
    });
    return g;
  }
};

}  // namespace

const Primitive& recurrent_primitive() {
  static const Primitive p = make_primitive<RowByRow>("softmax_attention_recurrent", kernel_specs(), false);
  return p;
}

}  // namespace lnx::kernels::softmax_attention_detail
