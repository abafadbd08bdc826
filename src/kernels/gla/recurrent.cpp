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

#include "kernels/common/kernel_math.h"
#include "kernels/common/prefetch.h"
#include "kernels/common/streaming_store.h"
#include "kernels/gla/gla_internal.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels::gla_detail {

namespace {

constexpr int64_t kBlock = 32;  // tokens between state checkpoints in the backward

// Raw pointers into the inputs.
template <typename T> struct Ptrs {
  const T *q, *k, *v, *g, *h0;
  explicit Ptrs(const KernelArgs& a)
      : q(a.ptr<T>("q")), k(a.ptr<T>("k")), v(a.ptr<T>("v")), g(a.ptr<T>("g")), h0(a.ptr<T>("initial_state")) {}
};

// One token: S ← Diag(a) S + k vᵀ, with a = exp(g) written to `a`.
template <typename T> inline void step(T* S, const T* gr, const T* kr, const T* vr, T* a, int64_t K, int64_t V) {
  for (int64_t i = 0; i < K; ++i) a[i] = fast_exp(gr[i]);
  for (int64_t i = 0; i < K; ++i) {
    T* Si = S + i * V;
    const T ai = a[i], ki = kr[i];
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) Si[j] = ai * Si[j] + ki * vr[j];
  }
}

// One token in reverse, with dS the gradient of the state after it and Sprev the state before
// it: dS += scale·q doᵀ; dk = dS v; dv = dSᵀ k; dg = exp(g) ⊙ rowsum(dS ⊙ Sprev); then
// dS ← Diag(exp(g)) dS, the gradient of the state before the token.
template <typename T> inline void reverse_step(T* dS, const T* Sprev, const T* qr, const T* kr, const T* vr,
                                               const T* gr, const T* dor, T scale, T* dkr, T* dvr, T* dgr, int64_t K,
                                               int64_t V) {
  std::fill(dvr, dvr + V, T(0));
  for (int64_t i = 0; i < K; ++i) {
    T* dSi = dS + i * V;
    axpy(scale * qr[i], dor, dSi, V);
    dkr[i] = dot(dSi, vr, V);
    axpy(kr[i], dSi, dvr, V);
    const T ai = fast_exp(gr[i]);
    dgr[i] = ai * dot(dSi, Sprev + i * V, V);
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) dSi[j] *= ai;
  }
}

template <typename T> KernelOutputs forward_pass(const KernelArgs& args) {
  const SequenceLayout& L = args.L;
  const int64_t H = L.H, K = L.K, V = L.V;
  Tensor o = Tensor::empty({L.B, L.T, H, V}, args.dtype);
  Tensor F = Tensor::empty({L.N, H, K, V}, args.dtype);
  const Ptrs<T> p(args);
  T* op = o.data<T>();
  T* Fp = F.data<T>();
  const T scale = static_cast<T>(args.scale);
  parallel_for(L.N * H, 1, [&](int64_t b, int64_t e) {
    std::vector<T> a(static_cast<size_t>(K));
    // The state is updated in a scratch that stays in cache, then streamed to its final slot.
    std::vector<T> scratch(static_cast<size_t>(K * V));
    T* S = scratch.data();
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / H, h = pair % H;
      if (p.h0)
        std::copy(p.h0 + pair * K * V, p.h0 + (pair + 1) * K * V, S);
      else
        std::fill(S, S + K * V, T(0));
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
      streaming_store(Fp + pair * K * V, S, K * V);
    }
    streaming_store_fence();
  });
  return {o, F};
}

// The backward of one (sequence, head) pair at a time; its scratch belongs to one thread.
template <typename T> struct Backward {
  const Ptrs<T> p;
  const int64_t H, K, V, KV;
  const T scale;
  const T *dop, *dFp;
  T *dq, *dk, *dv, *dg, *dh0;
  std::vector<T> a, dS;
  std::vector<T> block;  // [kBlock + 1, K, V]: the states of one block, the one before it first
  std::vector<T> ckpt;   // [blocks, K, V]: the state before every block

  Backward(const KernelArgs& args, const Tensor& d_o, const Tensor& d_final, TensorDict& gr)
      : p(args),
        H(args.L.H),
        K(args.L.K),
        V(args.L.V),
        KV(K * V),
        scale(static_cast<T>(args.scale)),
        dop(d_o.data<T>()),
        dFp(d_final.defined() ? d_final.data<T>() : nullptr),
        dq(gr.at("q").data<T>()),
        dk(gr.at("k").data<T>()),
        dv(gr.at("v").data<T>()),
        dg(gr.at("g").data<T>()),
        dh0(gr.contains("initial_state") ? gr.at("initial_state").data<T>() : nullptr),
        a(static_cast<size_t>(K)),
        dS(static_cast<size_t>(KV)),
        block(static_cast<size_t>((kBlock + 1) * KV)) {}

  // Token row r of head h: its inputs, do and gradient rows, fetched a few tokens ahead.
  void prefetch_token(int64_t r, int64_t h) const {
    const int64_t rk = (r * H + h) * K, rv = (r * H + h) * V;
    for (const T* x : {p.q + rk, p.k + rk, p.g + rk}) prefetch_rows(x, 1, 0, K);
    for (const T* x : {p.v + rv, dop + rv}) prefetch_rows(x, 1, 0, V);
    for (T* x : {dq + rk, dk + rk, dg + rk}) prefetch_rows_for_write(x, 1, 0, K);
    prefetch_rows_for_write(dv + rv, 1, 0, V);
  }

  // Pass 1: the state before every block of the pair's len tokens (from row r0) into ckpt.
  void checkpoints(int64_t pair, int64_t h, int64_t r0, int64_t len, int64_t nblocks) {
    ckpt.resize(static_cast<size_t>(std::max<int64_t>(nblocks, 1) * KV));
    T* S = block.data();
    if (p.h0)
      std::copy(p.h0 + pair * KV, p.h0 + (pair + 1) * KV, S);
    else
      std::fill(S, S + KV, T(0));
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
  }

  // Pass 2, forward over block blk (tokens t0 .. t1): its states into block (block[τ + 1] after
  // token t0 + τ) and dq_t = scale·S_t do_t.
  void block_states_and_dq(int64_t blk, int64_t h, int64_t r0, int64_t t0, int64_t t1) {
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
  }

  // Pass 2, tokens t1 − 1 … t0 in reverse: dk, dv, dg from the running dS, which ends as the
  // gradient of the state before token t0.
  void block_reverse(int64_t h, int64_t r0, int64_t t0, int64_t t1) {
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const int64_t rk = ((r0 + t) * H + h) * K, rv = ((r0 + t) * H + h) * V;
      reverse_step(dS.data(), block.data() + (t - t0) * KV, p.q + rk, p.k + rk, p.v + rv, p.g + rk, dop + rv, scale,
                   dk + rk, dv + rv, dg + rk, K, V);
    }
  }

  // Pair pi (sequence n, head h): pass 1, then pass 2 block by block in reverse; finally dh0.
  void pair(int64_t pi, const SequenceLayout& L) {
    const int64_t n = pi / H, h = pi % H;
    const int64_t r0 = L.offsets[n], len = L.length(n);
    const int64_t nblocks = (len + kBlock - 1) / kBlock;
    checkpoints(pi, h, r0, len, nblocks);
    if (dFp)
      std::copy(dFp + pi * KV, dFp + (pi + 1) * KV, dS.begin());
    else
      std::fill(dS.begin(), dS.end(), T(0));
    for (int64_t blk = nblocks - 1; blk >= 0; --blk) {
      const int64_t t0 = blk * kBlock, t1 = std::min(len, t0 + kBlock);
      block_states_and_dq(blk, h, r0, t0, t1);
      block_reverse(h, r0, t0, t1);
    }
    if (dh0) std::copy(dS.begin(), dS.end(), dh0 + pi * KV);
  }
};

struct Recurrent {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved*) { return forward_pass<T>(a); }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved&, const Tensor& d_o, const Tensor& d_final) {
    TensorDict g;
    for (const char* name : {"q", "k", "v", "g", "initial_state"})
      if (a.has(name)) g.insert(name, Tensor::empty(a[name].shape(), a.dtype));
    parallel_for(a.L.N * a.L.H, 1, [&](int64_t b, int64_t e) {
      Backward<T> w(a, d_o, d_final, g);
      for (int64_t pair = b; pair < e; ++pair) w.pair(pair, a.L);
    });
    return g;
  }
};

}  // namespace

const Primitive& recurrent_primitive() {
  static const Primitive p = make_primitive<Recurrent>("gla_recurrent", input_specs(), false);
  return p;
}

}  // namespace lnx::kernels::gla_detail
