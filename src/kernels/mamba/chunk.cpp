// mamba's chunk scan primitive: every sequence split into chunks (the ChunkPlan), each chunk a
// task per (group, lane of channels), in three phases:
//   1. (parallel over chunks) the chunk's scan from a zero state: its end state E_c and the
//      sum of its time steps ΣΔ_c [per channel];
//   2. (sequential over chunks, parallel over sequence × group × lane) the true incoming
//      states: S_{c+1} = exp(A ⊙ ΣΔ_c) ⊙ S_c + E_c (the whole chunk's decay as one exponential
//      of a sum of non-positive terms, ≤ 1);
//   3. (parallel over chunks) the chunk's scan again from its true incoming state S_c, giving
//      its outputs. (This equals adding C_t·(decay from the chunk start ⊙ S_c) to local outputs,
//      at the same cost — one decay per (token, n, d) either way — without storing them.)
// A diagonal per-channel decay leaves no matrix product to batch (unlike gla or mamba2), so the
// gain over the recurrent form is parallelism over chunks where (sequence, group, lane) tasks
// are few; the work is about twice the recurrent form's.
// Backward, the same way in reverse with the state gradient dS:
//   1. (parallel) each chunk's reverse scan from dS = 0 at its end: G_c, the gradient its own
//      outputs send to its incoming state;
//   2. (sequential in reverse) dS at each chunk's end: dS_c = exp(A ⊙ ΣΔ_{c+1}) ⊙ dS_{c+1} +
//      G_{c+1}, starting from dfinal; what is left after the first chunk is dh0;
//   3. (parallel) each chunk's states from its saved incoming state, then its tokens in reverse
//      from dS_c with the lane kernels (as the recurrent backward does per block).
#include "kernels/mamba/mamba_internal.h"

namespace lnx::kernels::mamba_detail {

namespace {

// S ← exp(A ⊙ ΣΔ) ⊙ S over one lane ([K, w]; A and ΣΔ at the lane's channels).
template <typename T> inline void decay_chunk(const Lane<T>& ln, const T* dsum, T* S) {
  const T* A = ln.Ah();
  for (int64_t n = 0; n < ln.K; ++n) {
    T* Sn = S + n * ln.w;
    const T* An = A + n * ln.V;
#pragma omp simd
    for (int64_t d = 0; d < ln.w; ++d) Sn[d] *= fast_exp(An[d] * dsum[d]);
  }
}

// What the phases share: the inputs, the plan, and each chunk's incoming state (ins
// [chunks, H, K, V]) and time-step sum (dsum [chunks, H, V]), kept for the backward.
// Chunk tasks are (chunk, group, lane); sequence tasks (sequence, group, lane).
template <typename T> struct ChunkScan {
  using Chunk = ChunkPlan::Chunk;
  // Two lane buffers [K, kLane] of one thread: a state (or state gradient) and a second one.
  struct Buffers {
    LaneVector<T> S, X;
    explicit Buffers(int64_t K) : S(static_cast<size_t>(K * kLane)), X(static_cast<size_t>(K * kLane)) {}
  };

  const KernelArgs& a;
  const ChunkPlan& plan;
  const ScanInputs<T> in;
  const int64_t H, K, V, nl;
  Tensor ins, dsum;

  ChunkScan(const KernelArgs& a_, const Tensor& delta)
      : a(a_), plan(a_.chunks()), in(a_, delta), H(a_.L.H), K(a_.L.K), V(a_.L.V), nl(lanes(V)) {}
  T* dsum_of(const Lane<T>& ln, int64_t ci) const { return dsum.data<T>() + (ci * H + ln.h) * V + ln.d0; }
  T* ins_of(const Lane<T>& ln, int64_t ci) const { return ins.data<T>() + ln.kv(ci); }

  // f(scratch, ci, chunk ci, lane) for every chunk task, in parallel; scratch = Scratch(args…) per thread.
  template <class Scratch, class F, class... Args> void each_chunk_task(F&& f, Args... args) const {
    parallel_for_dynamic(plan.total() * H * nl, 1, [&](int64_t b, int64_t e) {
      Scratch scratch(args...);
      for (int64_t task = b; task < e; ++task) {
        const int64_t ci = task / (H * nl);
        f(scratch, ci, plan.chunks[ci], Lane<T>::of_task(in, task));
      }
    });
  }
  // f(buffers, n, lane) for every sequence task, in parallel.
  template <class F> void each_sequence_task(F&& f) const {
    parallel_for_dynamic(a.L.N * H * nl, 1, [&](int64_t b, int64_t e) {
      Buffers buffers(K);
      for (int64_t task = b; task < e; ++task) f(buffers, task / (H * nl), Lane<T>::of_task(in, task));
    });
  }

  // ---- forward ----

  // Phase 1: each chunk's scan from zero into ends; its time-step sum into dsum.
  void local_scans(T* ends) const {
    each_chunk_task<Buffers>(
        [&](Buffers& s, int64_t ci, const Chunk& ch, const Lane<T>& ln) {
          std::fill(s.S.begin(), s.S.end(), T(0));
          T* ds = dsum_of(ln, ci);
          std::fill(ds, ds + ln.w, T(0));
          for (int64_t r = ch.row0; r < ch.row0 + ch.len; ++r) {
            step<T, false, false>(ln, r, s.S.data(), nullptr, nullptr, s.X.data());
            const T* dl = ln.dl + ln.rv(r);
            for (int64_t d = 0; d < ln.w; ++d) ds[d] += dl[d];
          }
          store(s.S.data(), ends + ln.kv(ci), ln);
        },
        K);
  }
  // Phase 2: the incoming state of every chunk, and the final states.
  void carry_states(const T* ends, T* final_state) const {
    each_sequence_task([&](Buffers& s, int64_t n, const Lane<T>& ln) {
      load_or_zero(s.S.data(), in.h0 ? in.h0 + ln.kv(n) : nullptr, ln);
      for (int64_t ci = plan.first[n]; ci < plan.first[n + 1]; ++ci) {
        store(s.S.data(), ins_of(ln, ci), ln);
        decay_chunk(ln, dsum_of(ln, ci), s.S.data());
        load(s.X.data(), ends + ln.kv(ci), ln);
        for (size_t i = 0; i < s.S.size(); ++i) s.S[i] += s.X[i];
      }
      store(s.S.data(), final_state + ln.kv(n), ln);
    });
  }
  // Phase 3: the outputs, each chunk's scan again from its incoming state.
  void outputs(T* o) const {
    each_chunk_task<Buffers>(
        [&](Buffers& s, int64_t ci, const Chunk& ch, const Lane<T>& ln) {
          load(s.S.data(), ins_of(ln, ci), ln);
          for (int64_t r = ch.row0; r < ch.row0 + ch.len; ++r)
            step<T, true, false>(ln, r, s.S.data(), o + ln.rv(r), nullptr, s.X.data());
        },
        K);
  }

  // ---- backward ----

  // Phase 1: G_c, the gradient each chunk's own outputs send to its incoming state, into G.
  void state_gradients(const T* dop, T* G) const {
    each_chunk_task<Buffers>(
        [&](Buffers& s, int64_t ci, const Chunk& ch, const Lane<T>& ln) {
          T* dS = s.S.data();
          const T* A = ln.Ah();
          std::fill(s.S.begin(), s.S.end(), T(0));
          for (int64_t r = ch.row0 + ch.len - 1; r >= ch.row0; --r) {
            const T *dy = dop + ln.rv(r), *dl = ln.dl + ln.rv(r), *Cv = ln.C + ln.rk(r);
            for (int64_t n = 0; n < K; ++n) {
              T* dSn = dS + n * ln.w;
              const T* An = A + n * V;
              const T cn = ln.scale * Cv[n];
#pragma omp simd
              for (int64_t d = 0; d < ln.w; ++d) dSn[d] = (dSn[d] + cn * dy[d]) * fast_exp(dl[d] * An[d]);
            }
          }
          store(dS, G + ln.kv(ci), ln);
        },
        K);
  }
  // Phase 2, in reverse: G_c becomes dS at chunk c's end; dh0 after the first chunk.
  void carry_gradients(const T* dF, T* G, const ScanGrads<T>& grads) const {
    each_sequence_task([&](Buffers& s, int64_t n, const Lane<T>& ln) {
      load_or_zero(s.S.data(), dF ? dF + ln.kv(n) : nullptr, ln);
      for (int64_t ci = plan.first[n + 1] - 1; ci >= plan.first[n]; --ci) {
        load(s.X.data(), G + ln.kv(ci), ln);
        store(s.S.data(), G + ln.kv(ci), ln);
        decay_chunk(ln, dsum_of(ln, ci), s.S.data());
        for (size_t i = 0; i < s.S.size(); ++i) s.S[i] += s.X[i];
      }
      if (T* dh0 = grads.dh0_of(ln, n)) store(s.S.data(), dh0, ln);
    });
  }
  // Phase 3: each chunk's token gradients, from its incoming state and dS at its end (in G).
  void token_gradients(const T* dop, const T* G, const ScanGrads<T>& grads) const {
    each_chunk_task<BackScratch<T>>(
        [&](BackScratch<T>& sc, int64_t ci, const Chunk& ch, const Lane<T>& ln) {
          load(sc.dS.data(), G + ln.kv(ci), ln);
          load(sc.S0.data(), ins_of(ln, ci), ln);
          std::fill(sc.dA.begin(), sc.dA.end(), T(0));
          block_backward(ln, ch.row0, ch.len, dop, grads.lane(ln.index()), sc);
          store(sc.dA.data(), grads.dA(ln, ci), ln);
        },
        plan.longest, K);
  }
};

struct ChunkedScan {
  // Saved: "ins", each chunk's incoming state, and "dsum", its time-step sum.
  template <typename T> static KernelOutputs forward(const KernelArgs& a, const Tensor& delta, Saved* saved) {
    const SequenceLayout& L = a.L;
    ChunkScan<T> k(a, delta);
    const int64_t nc = k.plan.total();
    Tensor o = Tensor::empty({L.B, L.T, L.H, L.V}, a.dtype);
    Tensor F = Tensor::empty({L.N, L.H, L.K, L.V}, a.dtype);
    Tensor ends = Tensor::empty({nc, L.H, L.K, L.V}, a.dtype);
    k.ins = Tensor::empty({nc, L.H, L.K, L.V}, a.dtype);
    k.dsum = Tensor::empty({nc, L.H, L.V}, a.dtype);
    k.local_scans(ends.data<T>());
    k.carry_states(ends.data<T>(), F.data<T>());
    k.outputs(o.data<T>());
    if (saved) {
      saved->insert("ins", k.ins);
      saved->insert("dsum", k.dsum);
    }
    return {o, F};
  }
  template <typename T> static TensorDict backward(const KernelArgs& a, const Tensor& delta, const Saved& saved,
                                                   const Tensor& d_o, const Tensor& d_final) {
    ChunkScan<T> k(a, delta);
    k.ins = saved.at("ins");
    k.dsum = saved.at("dsum");
    const ScanGrads<T> grads(a, k.plan.total());
    Tensor G = Tensor::empty({k.plan.total(), a.L.H, a.L.K, a.L.V}, a.dtype);  // G_c, then dS at chunk ends
    k.state_gradients(d_o.data<T>(), G.data<T>());
    k.carry_gradients(d_final.defined() ? d_final.data<T>() : nullptr, G.data<T>(), grads);
    k.token_gradients(d_o.data<T>(), G.data<T>(), grads);
    return grads.finish(a);
  }
};

}  // namespace

const Primitive& chunk_primitive() {
  static const Primitive p = make_primitive<WithSoftplus<ChunkedScan>>("mamba_chunk", scan_specs(), true);
  return p;
}

}  // namespace lnx::kernels::mamba_detail
