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
  const KernelArgs& a;
  const ChunkPlan& plan;
  const ScanInputs<T> in;
  const int64_t H, K, V, nl, lane_state;  // lane_state: K · kLane, one lane's state buffer
  Tensor ins, dsum;

  ChunkScan(const KernelArgs& a_, const Tensor& delta)
      : a(a_), plan(a_.chunks()), in(a_, delta), H(a_.L.H), K(a_.L.K), V(a_.L.V), nl(lanes(V)),
        lane_state(K * kLane) {}
  int64_t chunk_tasks() const { return plan.total() * H * nl; }
  int64_t sequence_tasks() const { return a.L.N * H * nl; }
  T* dsum_of(const Lane<T>& ln, int64_t ci) const { return dsum.data<T>() + (ci * H + ln.h) * V + ln.d0; }

  // ---- forward ----

  // Phase 1: each chunk's scan from zero into ends; its time-step sum into dsum.
  void local_scans(T* ends) const {
    parallel_for_dynamic(chunk_tasks(), 1, [&](int64_t b, int64_t e) {
      std::vector<T> S(static_cast<size_t>(lane_state)), dlx(kLane);
      for (int64_t task = b; task < e; ++task) {
        const ChunkPlan::Chunk& ch = plan.chunks[task / (H * nl)];
        const auto ln = Lane<T>::of_task(in, task);
        std::fill(S.begin(), S.end(), T(0));
        T* ds = dsum_of(ln, task / (H * nl));
        std::fill(ds, ds + ln.w, T(0));
        for (int64_t r = ch.row0; r < ch.row0 + ch.len; ++r) {
          step<T, false, false>(ln, r, S.data(), nullptr, nullptr, dlx.data());
          const T* dl = ln.dl + ln.rv(r);
          for (int64_t d = 0; d < ln.w; ++d) ds[d] += dl[d];
        }
        store(S.data(), ends + ln.kv(task / (H * nl)), ln);
      }
    });
  }
  // Phase 2: the incoming state of every chunk, and the final states.
  void carry_states(const T* ends, T* final_state) const {
    parallel_for_dynamic(sequence_tasks(), 1, [&](int64_t b, int64_t e) {
      std::vector<T> S(static_cast<size_t>(lane_state)), E(static_cast<size_t>(lane_state));
      for (int64_t task = b; task < e; ++task) {
        const int64_t n = task / (H * nl);
        const auto ln = Lane<T>::of_task(in, task);
        load_or_zero(S.data(), in.h0 ? in.h0 + ln.kv(n) : nullptr, ln);
        for (int64_t ci = plan.first[n]; ci < plan.first[n + 1]; ++ci) {
          store(S.data(), ins.data<T>() + ln.kv(ci), ln);
          decay_chunk(ln, dsum_of(ln, ci), S.data());
          load(E.data(), ends + ln.kv(ci), ln);
          for (size_t i = 0; i < S.size(); ++i) S[i] += E[i];
        }
        store(S.data(), final_state + ln.kv(n), ln);
      }
    });
  }
  // Phase 3: the outputs, each chunk's scan again from its incoming state.
  void outputs(T* o) const {
    parallel_for_dynamic(chunk_tasks(), 1, [&](int64_t b, int64_t e) {
      std::vector<T> S(static_cast<size_t>(lane_state)), dlx(kLane);
      for (int64_t task = b; task < e; ++task) {
        const ChunkPlan::Chunk& ch = plan.chunks[task / (H * nl)];
        const auto ln = Lane<T>::of_task(in, task);
        load(S.data(), ins.data<T>() + ln.kv(task / (H * nl)), ln);
        for (int64_t r = ch.row0; r < ch.row0 + ch.len; ++r)
          step<T, true, false>(ln, r, S.data(), o + ln.rv(r), nullptr, dlx.data());
      }
    });
  }

  // ---- backward ----

  // Phase 1: G_c, the gradient each chunk's own outputs send to its incoming state, into G.
  void state_gradients(const T* dop, T* G) const {
    parallel_for_dynamic(chunk_tasks(), 1, [&](int64_t b, int64_t e) {
      std::vector<T> dS(static_cast<size_t>(lane_state));
      for (int64_t task = b; task < e; ++task) {
        const ChunkPlan::Chunk& ch = plan.chunks[task / (H * nl)];
        const auto ln = Lane<T>::of_task(in, task);
        const T* A = ln.Ah();
        std::fill(dS.begin(), dS.end(), T(0));
        for (int64_t r = ch.row0 + ch.len - 1; r >= ch.row0; --r) {
          const T *dy = dop + ln.rv(r), *dl = ln.dl + ln.rv(r), *Cv = ln.C + ln.rk(r);
          for (int64_t n = 0; n < K; ++n) {
            T* dSn = dS.data() + n * ln.w;
            const T* An = A + n * V;
            const T cn = ln.scale * Cv[n];
#pragma omp simd
            for (int64_t d = 0; d < ln.w; ++d) dSn[d] = (dSn[d] + cn * dy[d]) * fast_exp(dl[d] * An[d]);
          }
        }
        store(dS.data(), G + ln.kv(task / (H * nl)), ln);
      }
    });
  }
  // Phase 2, in reverse: G_c becomes dS at chunk c's end; dh0 after the first chunk.
  void carry_gradients(const T* dF, T* G, const ScanGrads<T>& grads) const {
    parallel_for_dynamic(sequence_tasks(), 1, [&](int64_t b, int64_t e) {
      std::vector<T> dS(static_cast<size_t>(lane_state)), Gc(static_cast<size_t>(lane_state));
      for (int64_t task = b; task < e; ++task) {
        const int64_t n = task / (H * nl);
        const auto ln = Lane<T>::of_task(in, task);
        load_or_zero(dS.data(), dF ? dF + ln.kv(n) : nullptr, ln);
        for (int64_t ci = plan.first[n + 1] - 1; ci >= plan.first[n]; --ci) {
          load(Gc.data(), G + ln.kv(ci), ln);
          store(dS.data(), G + ln.kv(ci), ln);
          decay_chunk(ln, dsum_of(ln, ci), dS.data());
          for (size_t i = 0; i < dS.size(); ++i) dS[i] += Gc[i];
        }
        if (T* dh0 = grads.dh0_of(ln, n)) store(dS.data(), dh0, ln);
      }
    });
  }
  // Phase 3: each chunk's token gradients, from its incoming state and dS at its end (in G).
  void token_gradients(const T* dop, const T* G, const ScanGrads<T>& grads) const {
    parallel_for_dynamic(chunk_tasks(), 1, [&](int64_t b, int64_t e) {
      BackScratch<T> sc(plan.longest, K);
      for (int64_t task = b; task < e; ++task) {
        const int64_t ci = task / (H * nl);
        const ChunkPlan::Chunk& ch = plan.chunks[ci];
        const auto ln = Lane<T>::of_task(in, task);
        load(sc.dS.data(), G + ln.kv(ci), ln);
        load(sc.S0.data(), ins.data<T>() + ln.kv(ci), ln);
        std::fill(sc.dA.begin(), sc.dA.end(), T(0));
        block_backward(ln, ch.row0, ch.len, dop, grads.lane(task % nl), sc);
        store(sc.dA.data(), grads.dA(ln, ci), ln);
      }
    });
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
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Tensor& delta, const Saved& saved, const Tensor& d_o,
                             const Tensor& d_final) {
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
