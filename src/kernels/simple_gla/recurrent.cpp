// simple_gla's recurrent form: a fused token loop per (sequence, head), with a hand-written
// vjp. Forward: S ← exp(g_t)·S + k_t v_tᵀ, o_t = scale·Sᵀq_t. Backward, per (sequence, head):
//   pass 1 (forward again): dq_t = scale·S_t do_t, keeping the state every 32 tokens;
//   pass 2 (reverse): dS ← dS + scale·q_t do_tᵀ (dS starts at dfinal), dk_t = dS v_t,
//                     dv_t = dSᵀ k_t, dg_t = exp(g_t)·⟨S_{t−1}, dS⟩, dS ← exp(g_t)·dS;
//                     finally dh0 = dS. S_{t−1} is recomputed segment by segment from the
//                     kept states. dg is formed directly, not by the identity
//                     Σ_{s≥t}(q_s·dq_s − k_s·dk_s), whose cancellation loses the small dg of
//                     strongly negative gates (and Σ g·dg, the gradient of a decay rate, with it).
// (sequence, head) pairs run in parallel; each owns its output rows and state.
#include <vector>

#include "kernels/common/prefetch.h"
#include "kernels/common/streaming_store.h"
#include "kernels/simple_gla/simple_gla_internal.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels::simple_gla_detail {

namespace {

// Raw pointers into the inputs.
template <typename T> struct Ptrs {
  const T *q, *k, *v, *h0;
  Gates<T> gate;
  explicit Ptrs(const KernelArgs& a)
      : q(a.ptr<T>("q")), k(a.ptr<T>("k")), v(a.ptr<T>("v")), h0(a.ptr<T>("initial_state")), gate(a) {}
};

template <typename T> KernelOutputs forward_pass(const KernelArgs& a) {
  const SequenceLayout& L = a.L;
  const int64_t H = L.H, K = L.K, V = L.V;
  Tensor o = Tensor::empty({L.B, L.T, H, V}, a.dtype);
  Tensor F = Tensor::empty({L.N, H, K, V}, a.dtype);
  Ptrs<T> p(a);
  T* op = o.data<T>();
  T* Fp = F.data<T>();
  const T scale = static_cast<T>(a.scale);
  parallel_for(L.N * H, 1, [&](int64_t b, int64_t e) {
    // The state is read from h0 by a sequence's first token, updated in a scratch that stays
    // in cache, and streamed to its final slot at the end: a decoding step reads h0 once and
    // writes the final state once (streaming_store.h).
    std::vector<T> scratch(static_cast<size_t>(K * V));
    T* S = scratch.data();
    for (int64_t pair = b; pair < e; ++pair) {
      const int64_t n = pair / H, h = pair % H;
      const T* from = p.h0 ? p.h0 + pair * K * V : nullptr;  // the state before the next token
      if (!from) {
        std::fill(S, S + K * V, T(0));
        from = S;
      }
      for (int64_t r = L.offsets[n]; r < L.offsets[n + 1]; ++r) {
        if (r + kPrefetchTokens < L.offsets[n + 1]) {
          const int64_t ahead = (r + kPrefetchTokens) * H + h;
          prefetch_rows(p.q + ahead * K, 1, 0, K);
          prefetch_rows(p.k + ahead * K, 1, 0, K);
          prefetch_rows(p.v + ahead * V, 1, 0, V);
          prefetch_rows_for_write(op + ahead * V, 1, 0, V);
        }
        const T decay = static_cast<T>(std::exp(p.gate(r, h)));
        const T* kr = p.k + (r * H + h) * K;
        const T* vr = p.v + (r * H + h) * V;
        const T* qr = p.q + (r * H + h) * K;
        T* orow = op + (r * H + h) * V;
        std::fill(orow, orow + V, T(0));
        for (int64_t i = 0; i < K; ++i) {
          const T* Fi = from + i * V;
          T* Si = S + i * V;
          const T ki = kr[i], qi = qr[i] * scale;
#pragma omp simd
          for (int64_t j = 0; j < V; ++j) {
            Si[j] = decay * Fi[j] + ki * vr[j];
            orow[j] += qi * Si[j];
          }
        }
        from = S;
      }
      streaming_store(Fp + pair * K * V, from, K * V);  // h0 itself for an empty sequence
    }
    streaming_store_fence();
  });
  return {o, F};
}

// Tokens per segment of the backward: the state before every segment is kept (pass 1), and
// the states inside one segment are recomputed from it (pass 2).
constexpr int64_t kSegment = 32;

// The backward of one (sequence, head) pair at a time; its scratch belongs to one thread.
template <typename T> struct Backward {
  const KernelArgs& a;
  const Ptrs<T> p;
  const int64_t H, K, V, KV;
  const T scale;
  const bool want_gates;
  const T *dop, *dFp;
  T *dq, *dk, *dv, *dh0;
  std::vector<double>& dgt;  // [rows, H]: the gradient of every token's log gate
  std::vector<T> S, dS, checkpoints, seg;

  Backward(const KernelArgs& a_, const Tensor& d_o, const Tensor& d_final, TensorDict& g, std::vector<double>& dgt_)
      : a(a_),
        p(a_),
        H(a_.L.H),
        K(a_.L.K),
        V(a_.L.V),
        KV(K * V),
        scale(static_cast<T>(a_.scale)),
        want_gates(p.gate.any()),
        dop(d_o.data<T>()),
        dFp(d_final.defined() ? d_final.data<T>() : nullptr),
        dq(g.at("q").data<T>()),
        dk(g.at("k").data<T>()),
        dv(g.at("v").data<T>()),
        dh0(g.contains("initial_state") ? g.at("initial_state").data<T>() : nullptr),
        dgt(dgt_),
        S(static_cast<size_t>(KV)),
        dS(static_cast<size_t>(KV)),
        seg(static_cast<size_t>(kSegment * KV)) {}

  // S ← decay·S + k vᵀ for row r, head h.
  void step(T* St, int64_t r, int64_t h) const {
    const T decay = static_cast<T>(std::exp(p.gate(r, h)));
    const T* kr = p.k + (r * H + h) * K;
    const T* vr = p.v + (r * H + h) * V;
    for (int64_t i = 0; i < K; ++i) {
      T* Si = St + i * V;
      const T ki = kr[i];
      for (int64_t j = 0; j < V; ++j) Si[j] = decay * Si[j] + ki * vr[j];
    }
  }
  // Row r's q, k, v and do of head h, fetched a few tokens before their use.
  void prefetch_token(int64_t r, int64_t h) const {
    prefetch_rows(p.q + (r * H + h) * K, 1, 0, K);
    prefetch_rows(p.k + (r * H + h) * K, 1, 0, K);
    prefetch_rows(p.v + (r * H + h) * V, 1, 0, V);
    prefetch_rows(dop + (r * H + h) * V, 1, 0, V);
    prefetch_rows_for_write(dq + (r * H + h) * K, 1, 0, K);
    prefetch_rows_for_write(dk + (r * H + h) * K, 1, 0, K);
    prefetch_rows_for_write(dv + (r * H + h) * V, 1, 0, V);
  }
  // Pass 1: the states again, for dq; keeps the state before every segment. Not inlined,
  // like token(): inlined into pair(), GCC ran out of registers and stored the simd
  // reduction's accumulator to the stack on every iteration of the inner loops (~10% of the
  // backward, measured).
  [[gnu::noinline]] void states_and_dq(int64_t pair, int64_t h, int64_t r0, int64_t len) {
    if (p.h0)
      std::copy(p.h0 + pair * KV, p.h0 + (pair + 1) * KV, S.begin());
    else
      std::fill(S.begin(), S.end(), T(0));
    for (int64_t t = 0; t < len; ++t) {
      const int64_t r = r0 + t;
      if (t + kPrefetchTokens < len) prefetch_token(r + kPrefetchTokens, h);
      if (want_gates && t % kSegment == 0) std::copy(S.begin(), S.end(), checkpoints.begin() + (t / kSegment) * KV);
      step(S.data(), r, h);
      const T* dor = dop + (r * H + h) * V;
      T* dqr = dq + (r * H + h) * K;
      for (int64_t i = 0; i < K; ++i) {
        const T* Si = S.data() + i * V;
        T acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < V; ++j) acc += Si[j] * dor[j];
        dqr[i] = acc * scale;
      }
    }
  }
  // Token r in reverse: dS gains its read, gives dk, dv (and dg from prev = S_{t−1}), and
  // becomes the gradient of the state before the token.
  [[gnu::noinline]] void token(int64_t r, int64_t h, const T* prev) {
    // Members copied to locals: stores through the gradient rows (T*) could otherwise alias
    // this object's T members for the compiler, which then reloads them in the inner loops.
    const int64_t H = this->H, K = this->K, V = this->V;
    const T scale = this->scale;
    T* const dSp = dS.data();
    const T decay = static_cast<T>(std::exp(p.gate(r, h)));
    const T *qr = p.q + (r * H + h) * K, *kr = p.k + (r * H + h) * K, *vr = p.v + (r * H + h) * V;
    const T* dor = dop + (r * H + h) * V;
    T *dkr = dk + (r * H + h) * K, *dvr = dv + (r * H + h) * V;
    std::fill(dvr, dvr + V, T(0));
    double dgate = 0;  // dg_t = exp(g_t)·⟨S_{t−1}, dS_t⟩
    for (int64_t i = 0; i < K; ++i) {
      T* dSi = dSp + i * V;
      const T qi = qr[i] * scale, ki = kr[i];
      T acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < V; ++j) {
        dSi[j] += qi * dor[j];
        acc += dSi[j] * vr[j];
        dvr[j] += ki * dSi[j];
      }
      dkr[i] = acc;
      if (prev) {
        T dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < V; ++j) dot += prev[i * V + j] * dSi[j];
        dgate += static_cast<double>(dot);
      }
      for (int64_t j = 0; j < V; ++j) dSi[j] *= decay;
    }
    if (want_gates) dgt[r * H + h] = dgate * static_cast<double>(decay);
  }
  void pair(int64_t pair_index) {
    const int64_t n = pair_index / H, h = pair_index % H, r0 = a.L.offsets[n], len = a.L.length(n);
    const int64_t nseg = (len + kSegment - 1) / kSegment;
    if (want_gates) checkpoints.resize(static_cast<size_t>(nseg * KV));
    states_and_dq(pair_index, h, r0, len);
    // Pass 2, segments in reverse: seg[τ] = the state before token τ of the segment;
    // dS = the gradient of the state after the current token.
    if (dFp)
      std::copy(dFp + pair_index * KV, dFp + (pair_index + 1) * KV, dS.begin());
    else
      std::fill(dS.begin(), dS.end(), T(0));
    for (int64_t sg = nseg - 1; sg >= 0; --sg) {
      const int64_t t0 = sg * kSegment, t1 = std::min(len, t0 + kSegment);
      if (want_gates) {
        std::copy(checkpoints.begin() + sg * KV, checkpoints.begin() + (sg + 1) * KV, seg.begin());
        for (int64_t t = t0 + 1; t < t1; ++t) {
          std::copy(seg.begin() + (t - 1 - t0) * KV, seg.begin() + (t - t0) * KV, seg.begin() + (t - t0) * KV);
          step(seg.data() + (t - t0) * KV, r0 + t - 1, h);
        }
      }
      for (int64_t t = t1 - 1; t >= t0; --t) {
        if (t >= kPrefetchTokens) prefetch_token(r0 + t - kPrefetchTokens, h);
        token(r0 + t, h, want_gates ? seg.data() + (t - t0) * KV : nullptr);
      }
    }
    if (dh0) std::copy(dS.begin(), dS.end(), dh0 + pair_index * KV);
  }
};

struct Recurrent {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved*) { return forward_pass<T>(a); }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved&, const Tensor& d_o, const Tensor& d_final) {
    const SequenceLayout& L = a.L;
    TensorDict g;
    for (const char* name : {"q", "k", "v", "initial_state"})
      if (a.has(name)) g.insert(name, Tensor::empty(a[name].shape(), a.dtype));
    std::vector<double> dgt(Gates<T>(a).any() ? static_cast<size_t>(L.B * L.T * L.H) : 0, 0.0);
    parallel_for(L.N * L.H, 1, [&](int64_t b, int64_t e) {
      Backward<T> w(a, d_o, d_final, g, dgt);
      for (int64_t pair = b; pair < e; ++pair) w.pair(pair);
    });
    store_gate_grads(a, dgt, g);
    return g;
  }
};

}  // namespace

const Primitive& recurrent_primitive() {
  static const Primitive p = make_primitive<Recurrent>("simple_gla_recurrent", input_specs(false), false);
  return p;
}

}  // namespace lnx::kernels::simple_gla_detail
