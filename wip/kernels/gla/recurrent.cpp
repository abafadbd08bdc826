// gla's recurrent form: a fused token loop per (sequence, head), with a hand-written vjp.
//   Forward, per key row i: S_i ← exp(g_ti)·S_i + k_ti v_t,  o_t += scale·q_ti·S_i.
//   Backward, per (sequence, head), with the states recomputed from checkpoints every kBlock
//   tokens (pass 1), then blocks in reverse (pass 2): the block's states again (and
//   dq_t = scale·S_t do_t), then tokens in reverse with the running state gradient dS:
//     dS += scale·q_t do_tᵀ;  dk_t = dS v_t;  dv_t = dSᵀ k_t;
//     dg_t = exp(g_t) ⊙ rowsum(dS ⊙ S_{t−1});  dS ← Diag(exp(g_t)) dS;
//   and finally dh0 = dS. dg is formed explicitly (not from a cumulative-sum identity), so it
//   stays accurate when gates are strongly negative and the true dg is tiny.
// (sequence, head) pairs run in parallel; each owns its output rows and its state.
#include <algorithm>
#include <vector>

#include "kernels/common/prefetch.h"
#include "kernels/gla/args.h"
#include "kernels/gla/gla.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels {

using namespace gla_detail;

namespace {

constexpr int64_t kBlock = 32;  // tokens between state checkpoints in the backward

template <typename T> struct Ptrs {
  const T *q, *k, *v, *g, *h0;
  explicit Ptrs(const Args& a)
      : q(a.q.data<T>()), k(a.k.data<T>()), v(a.v.data<T>()), g(a.g.data<T>()),
        h0(a.h0.defined() ? a.h0.data<T>() : nullptr) {}
};

// One token: S ← Diag(a) S + k vᵀ, with a = exp(g) written to `a`.
template <typename T>
inline void step(T* S, const T* gr, const T* kr, const T* vr, T* a, int64_t K, int64_t V) {
  for (int64_t i = 0; i < K; ++i) a[i] = fast_exp(gr[i]);
  for (int64_t i = 0; i < K; ++i) {
    T* Si = S + i * V;
    const T ai = a[i], ki = kr[i];
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) Si[j] = ai * Si[j] + ki * vr[j];
  }
}

template <typename T>
std::pair<Tensor, Tensor> forward(const Args& args) {
  const SequenceLayout& L = args.L;
  const int64_t H = L.H, K = L.K, V = L.V;
  Tensor o = Tensor::empty({L.B, L.T, H, V}, args.q.dtype());
  Tensor F = Tensor::empty({L.N, H, K, V}, args.q.dtype());
  Ptrs<T> p(args);
  T* op = o.data<T>();
  T* Fp = F.data<T>();
  const T scale = static_cast<T>(args.scale);
  parallel_for(L.N * H, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    std::vector<T> a(static_cast<size_t>(K));
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / H, h = pair % H;
      T* S = Fp + pair * K * V;  // the state lives in its final-state slot
      if (p.h0) std::copy(p.h0 + pair * K * V, p.h0 + (pair + 1) * K * V, S);
      else std::fill(S, S + K * V, T(0));
      for (int64_t r = L.offsets[n]; r < L.offsets[n + 1]; ++r) {
        if (r + kPrefetchTokens < L.offsets[n + 1]) {
          const int64_t ak = ((r + kPrefetchTokens) * H + h) * K, av = ((r + kPrefetchTokens) * H + h) * V;
          for (const T* x : {p.q + ak, p.k + ak, p.g + ak}) prefetch_rows(x, 1, 0, K);
          prefetch_rows(p.v + av, 1, 0, V);
          prefetch_rows_for_write(op + av, 1, 0, V);
        }
        const int64_t rk = (r * H + h) * K, rv = (r * H + h) * V;
        const T *kr = p.k + rk, *vr = p.v + rv, *qr = p.q + rk, *gr = p.g + rk;
        T* orow = op + rv;
        for (int64_t i = 0; i < K; ++i) a[i] = fast_exp(gr[i]);
        std::fill(orow, orow + V, T(0));
        for (int64_t i = 0; i < K; ++i) {
          T* Si = S + i * V;
          const T ai = a[i], ki = kr[i], qi = qr[i] * scale;
#pragma omp simd
          for (int64_t j = 0; j < V; ++j) {
            Si[j] = ai * Si[j] + ki * vr[j];
            orow[j] += qi * Si[j];
          }
        }
      }
    }
  });
  return {o, F};
}

template <typename T>
Grads backward(const Args& args, const Tensor& d_o, const Tensor& d_final) {
  const SequenceLayout& L = args.L;
  const int64_t H = L.H, K = L.K, V = L.V, KV = K * V;
  Grads gr;
  gr.dq = Tensor::empty(args.q.shape(), args.q.dtype());
  gr.dk = Tensor::empty(args.k.shape(), args.k.dtype());
  gr.dv = Tensor::empty(args.v.shape(), args.v.dtype());
  gr.dg = Tensor::empty(args.g.shape(), args.g.dtype());
  if (args.h0.defined()) gr.dh0 = Tensor::empty(args.h0.shape(), args.h0.dtype());
  Ptrs<T> p(args);
  const T* dop = d_o.data<T>();
  const T* dFp = d_final.defined() ? d_final.data<T>() : nullptr;
  T *dq = gr.dq.data<T>(), *dk = gr.dk.data<T>(), *dv = gr.dv.data<T>(), *dg = gr.dg.data<T>();
  T* dh0 = gr.dh0.defined() ? gr.dh0.data<T>() : nullptr;
  const T scale = static_cast<T>(args.scale);
  // Token row r of head h: its inputs, do and gradient rows, fetched a few tokens ahead.
  auto prefetch_token = [&](int64_t r, int64_t h) {
    const int64_t rk = (r * H + h) * K, rv = (r * H + h) * V;
    for (const T* x : {p.q + rk, p.k + rk, p.g + rk}) prefetch_rows(x, 1, 0, K);
    for (const T* x : {p.v + rv, dop + rv}) prefetch_rows(x, 1, 0, V);
    for (T* x : {dq + rk, dk + rk, dg + rk}) prefetch_rows_for_write(x, 1, 0, K);
    prefetch_rows_for_write(dv + rv, 1, 0, V);
  };
  parallel_for(L.N * H, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    std::vector<T> a(static_cast<size_t>(K)), dS(static_cast<size_t>(KV));
    std::vector<T> block(static_cast<size_t>((kBlock + 1) * KV)), ckpt;
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / H, h = pair % H;
      const int64_t r0 = L.offsets[n], len = L.length(n);
      const int64_t nblocks = (len + kBlock - 1) / kBlock;
      // Pass 1: the state before every block.
      ckpt.resize(static_cast<size_t>(std::max<int64_t>(nblocks, 1) * KV));
      T* S = block.data();
      if (p.h0) std::copy(p.h0 + pair * KV, p.h0 + (pair + 1) * KV, S);
      else std::fill(S, S + KV, T(0));
      for (int64_t t = 0; t < len; ++t) {
        if (t + kPrefetchTokens < len) {
          const int64_t ak = ((r0 + t + kPrefetchTokens) * H + h) * K;
          prefetch_rows(p.g + ak, 1, 0, K);
          prefetch_rows(p.k + ak, 1, 0, K);
          prefetch_rows(p.v + ((r0 + t + kPrefetchTokens) * H + h) * V, 1, 0, V);
        }
        if (t % kBlock == 0) std::copy(S, S + KV, ckpt.data() + (t / kBlock) * KV);
        const int64_t rk = ((r0 + t) * H + h) * K, rv = ((r0 + t) * H + h) * V;
        step(S, p.g + rk, p.k + rk, p.v + rv, a.data(), K, V);
      }
      // Pass 2: blocks in reverse.
      if (dFp) std::copy(dFp + pair * KV, dFp + (pair + 1) * KV, dS.begin());
      else std::fill(dS.begin(), dS.end(), T(0));
      for (int64_t blk = nblocks - 1; blk >= 0; --blk) {
        const int64_t t0 = blk * kBlock, t1 = std::min(len, t0 + kBlock);
        std::copy(ckpt.data() + blk * KV, ckpt.data() + (blk + 1) * KV, block.data());
        for (int64_t t = t0; t < std::min(t1, t0 + kPrefetchTokens); ++t) prefetch_token(r0 + t, h);
        for (int64_t t = t0; t < t1; ++t) {
          if (t + kPrefetchTokens < t1) prefetch_token(r0 + t + kPrefetchTokens, h);
          const int64_t rk = ((r0 + t) * H + h) * K, rv = ((r0 + t) * H + h) * V;
          T* St = block.data() + (t - t0 + 1) * KV;
          std::copy(St - KV, St, St);
          step(St, p.g + rk, p.k + rk, p.v + rv, a.data(), K, V);
          const T* dor = dop + rv;
          for (int64_t i = 0; i < K; ++i) dq[rk + i] = scale * dot(St + i * V, dor, V);
        }
        for (int64_t t = t1 - 1; t >= t0; --t) {
          const int64_t rk = ((r0 + t) * H + h) * K, rv = ((r0 + t) * H + h) * V;
          const T *qr = p.q + rk, *kr = p.k + rk, *vr = p.v + rv, *gt = p.g + rk, *dor = dop + rv;
          const T* Sprev = block.data() + (t - t0) * KV;
          T* dvr = dv + rv;
          std::fill(dvr, dvr + V, T(0));
          for (int64_t i = 0; i < K; ++i) {
            T* dSi = dS.data() + i * V;
            axpy(scale * qr[i], dor, dSi, V);
            dk[rk + i] = dot(dSi, vr, V);
            axpy(kr[i], dSi, dvr, V);
            const T ai = fast_exp(gt[i]);
            dg[rk + i] = ai * dot(dSi, Sprev + i * V, V);
#pragma omp simd
            for (int64_t j = 0; j < V; ++j) dSi[j] *= ai;
          }
        }
      }
      if (dh0) std::copy(dS.begin(), dS.end(), dh0 + pair * KV);
    }
  });
  return gr;
}

}  // namespace

MechanismOutputs gla_recurrent(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "gla_recurrent";
  Args args = parse_args(op, in, opt);
  auto [o, F] = dispatch_float(args.q.dtype(), op, [&]<typename T>() { return forward<T>(args); });
  return run_and_record(op, in, args, o, F, [args](const Tensor& d_o, const Tensor& d_final) {
    return dispatch_float(args.q.dtype(), "gla_recurrent_backward",
                          [&]<typename T>() { return backward<T>(args, d_o, d_final); });
  });
}

}  // namespace lnx::kernels
