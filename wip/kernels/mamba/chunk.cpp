// mamba's chunk form: every sequence split into chunks of chunk_size tokens, each chunk a task
// per (group, lane of channels), in three phases:
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
//      from dS_c with the lane kernels of scan.h (as the recurrent backward does per block).
#include <memory>
#include <tuple>

#include "kernels/mamba/mamba.h"
#include "kernels/mamba/scan.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels {

using namespace mamba_detail;

namespace {

struct Plan {
  int64_t C = 64;
  std::vector<int64_t> base;  // first chunk of each sequence (N + 1 entries)
  std::vector<int64_t> row0, len;  // per chunk: its first row and its length
  int64_t longest = 1;             // the longest chunk (sizes the backward's scratch)
  int64_t total() const { return base.back(); }
};

Plan make_plan(const SequenceLayout& L, int64_t C) {
  Plan p;
  p.C = C;
  p.base.push_back(0);
  for (int64_t n = 0; n < L.N; ++n) {
    for (int64_t t = 0; t < L.length(n); t += C) {
      p.row0.push_back(L.offsets[n] + t);
      p.len.push_back(std::min(C, L.length(n) - t));
      p.longest = std::max(p.longest, p.len.back());
    }
    p.base.push_back(static_cast<int64_t>(p.row0.size()));
  }
  return p;
}

// What the backward keeps: each chunk's incoming state [chunks, H, K, V] and ΣΔ [chunks, H, V].
struct Saved {
  Tensor ins, dsum;
};

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

template <typename T>
std::pair<Tensor, Tensor> forward(const Core& c, const Plan& plan, Saved& saved) {
  const SequenceLayout& L = c.L;
  const int64_t H = L.H, K = L.K, V = L.V, nl = lanes(V), nc = plan.total();
  const DType dtype = c.x.dtype();
  Tensor o = Tensor::empty({L.B, L.T, H, V}, dtype);
  Tensor F = Tensor::empty({L.N, H, K, V}, dtype);
  Tensor ends = Tensor::empty({nc, H, K, V}, dtype);
  saved.ins = Tensor::empty({nc, H, K, V}, dtype);
  saved.dsum = Tensor::empty({nc, H, V}, dtype);
  T *op = o.data<T>(), *Fp = F.data<T>(), *Ep = ends.data<T>();
  T *Ip = saved.ins.data<T>(), *Dp = saved.dsum.data<T>();
  const T* h0 = c.h0.defined() ? c.h0.data<T>() : nullptr;
  // Phase 1: local scans.
  parallel_for_dynamic(nc * H * nl, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    std::vector<T> S(static_cast<size_t>(K * kLane)), dlx(kLane);
    for (int64_t task = b; task < e; ++task) {
      const int64_t ci = task / (H * nl), h = (task / nl) % H;
      const Lane<T> ln(c, h, task % nl);
      std::fill(S.begin(), S.end(), T(0));
      T* ds = Dp + (ci * H + h) * V + ln.d0;
      std::fill(ds, ds + ln.w, T(0));
      for (int64_t r = plan.row0[ci], r1 = r + plan.len[ci]; r < r1; ++r) {
        step<T, false, false>(ln, r, S.data(), nullptr, nullptr, dlx.data());
        const T* dl = ln.dl + ln.rv(r);
        for (int64_t d = 0; d < ln.w; ++d) ds[d] += dl[d];
      }
      store(S.data(), Ep + ln.kv(ci), ln);
    }
  });
  // Phase 2: carry the incoming states across chunks.
  parallel_for_dynamic(L.N * H * nl, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    std::vector<T> S(static_cast<size_t>(K * kLane)), E(static_cast<size_t>(K * kLane));
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = task / (H * nl), h = (task / nl) % H;
      const Lane<T> ln(c, h, task % nl);
      if (h0) load(S.data(), h0 + ln.kv(n), ln);
      else std::fill(S.begin(), S.end(), T(0));
      for (int64_t ci = plan.base[n]; ci < plan.base[n + 1]; ++ci) {
        store(S.data(), Ip + ln.kv(ci), ln);
        decay_chunk(ln, Dp + (ci * H + h) * V + ln.d0, S.data());
        load(E.data(), Ep + ln.kv(ci), ln);
        for (size_t i = 0; i < S.size(); ++i) S[i] += E[i];
      }
      store(S.data(), Fp + ln.kv(n), ln);
    }
  });
  // Phase 3: outputs from the true incoming states.
  parallel_for_dynamic(nc * H * nl, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    std::vector<T> S(static_cast<size_t>(K * kLane)), dlx(kLane);
    for (int64_t task = b; task < e; ++task) {
      const int64_t ci = task / (H * nl), h = (task / nl) % H;
      const Lane<T> ln(c, h, task % nl);
      load(S.data(), Ip + ln.kv(ci), ln);
      for (int64_t r = plan.row0[ci], r1 = r + plan.len[ci]; r < r1; ++r)
        step<T, true, false>(ln, r, S.data(), op + ln.rv(r), nullptr, dlx.data());
    }
  });
  return {o, F};
}

template <typename T>
CoreGrads backward(const Core& c, const Plan& plan, const Saved& saved, const Tensor& d_o,
                   const Tensor& d_final) {
  const SequenceLayout& L = c.L;
  const int64_t H = L.H, K = L.K, V = L.V, nl = lanes(V), nc = plan.total(), rows = L.B * L.T;
  const DType dtype = c.x.dtype();
  CoreGrads gr;
  gr.dx = Tensor::empty(c.x.shape(), dtype);
  gr.ddelta = Tensor::empty(c.delta.shape(), dtype);
  Tensor dA_parts = zeros({std::max<int64_t>(nc, 1), H, K, V}, dtype);
  Tensor dB_parts = Tensor::empty({nl, rows, H, K}, dtype);
  Tensor dC_parts = Tensor::empty({nl, rows, H, K}, dtype);
  Tensor G = Tensor::empty({nc, H, K, V}, dtype);  // G_c, then dS at each chunk's end
  if (c.h0.defined()) gr.dh0 = Tensor::empty(c.h0.shape(), dtype);
  const T *Ip = saved.ins.data<T>(), *Dp = saved.dsum.data<T>();
  const T* dop = d_o.data<T>();
  const T* dF = d_final.defined() ? d_final.data<T>() : nullptr;
  T *dx = gr.dx.data<T>(), *ddl = gr.ddelta.data<T>(), *dAp = dA_parts.data<T>();
  T *dBp = dB_parts.data<T>(), *dCp = dC_parts.data<T>(), *Gp = G.data<T>();
  T* dh0 = gr.dh0.defined() ? gr.dh0.data<T>() : nullptr;
  // Phase 1: each chunk's gradient into its incoming state, from its own outputs.
  parallel_for_dynamic(nc * H * nl, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    std::vector<T> dS(static_cast<size_t>(K * kLane));
    for (int64_t task = b; task < e; ++task) {
      const int64_t ci = task / (H * nl), h = (task / nl) % H;
      const Lane<T> ln(c, h, task % nl);
      const T* A = ln.Ah();
      std::fill(dS.begin(), dS.end(), T(0));
      for (int64_t r = plan.row0[ci] + plan.len[ci] - 1; r >= plan.row0[ci]; --r) {
        const T *dy = dop + ln.rv(r), *dl = ln.dl + ln.rv(r), *Cv = ln.C + ln.rk(r);
        for (int64_t n = 0; n < K; ++n) {
          T* dSn = dS.data() + n * ln.w;
          const T* An = A + n * V;
          const T cn = ln.scale * Cv[n];
#pragma omp simd
          for (int64_t d = 0; d < ln.w; ++d) dSn[d] = (dSn[d] + cn * dy[d]) * fast_exp(dl[d] * An[d]);
        }
      }
      store(dS.data(), Gp + ln.kv(ci), ln);
    }
  });
  // Phase 2: dS at every chunk's end, in reverse; dh0 after the first chunk.
  parallel_for_dynamic(L.N * H * nl, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    std::vector<T> dS(static_cast<size_t>(K * kLane)), Gc(static_cast<size_t>(K * kLane));
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = task / (H * nl), h = (task / nl) % H;
      const Lane<T> ln(c, h, task % nl);
      if (dF) load(dS.data(), dF + ln.kv(n), ln);
      else std::fill(dS.begin(), dS.end(), T(0));
      for (int64_t ci = plan.base[n + 1] - 1; ci >= plan.base[n]; --ci) {
        load(Gc.data(), Gp + ln.kv(ci), ln);
        store(dS.data(), Gp + ln.kv(ci), ln);
        decay_chunk(ln, Dp + (ci * H + h) * V + ln.d0, dS.data());
        for (size_t i = 0; i < dS.size(); ++i) dS[i] += Gc[i];
      }
      if (dh0) store(dS.data(), dh0 + ln.kv(n), ln);
    }
  });
  // Phase 3: each chunk's token gradients.
  parallel_for_dynamic(nc * H * nl, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    BackScratch<T> sc(plan.longest, K);
    std::vector<T> dS(static_cast<size_t>(K * kLane)), dA(static_cast<size_t>(K * kLane)),
        S0(static_cast<size_t>(K * kLane));
    for (int64_t task = b; task < e; ++task) {
      const int64_t ci = task / (H * nl), h = (task / nl) % H, lane = task % nl;
      const Lane<T> ln(c, h, lane);
      const LaneGrads<T> out{dx, ddl, dBp + lane * rows * H * K, dCp + lane * rows * H * K};
      load(dS.data(), Gp + ln.kv(ci), ln);
      load(S0.data(), Ip + ln.kv(ci), ln);
      std::fill(dA.begin(), dA.end(), T(0));
      block_backward(ln, plan.row0[ci], plan.len[ci], S0.data(), dop, dS.data(), dA.data(), out, sc);
      store(dA.data(), dAp + ln.kv(ci), ln);
    }
  });
  gr.dA = sum_first(dA_parts, {H, K, V});
  gr.dB = sum_first(dB_parts, c.B.shape());
  gr.dC = sum_first(dC_parts, c.C.shape());
  return gr;
}

}  // namespace

MechanismOutputs mamba_chunk(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "mamba_chunk";
  check_chunk_size(op, opt.chunk_size);
  return run_fast(op, in, opt, [op](const Core& c, bool want_grad) {
    const auto plan = std::make_shared<Plan>(make_plan(c.L, c.chunk_size));
    auto saved = std::make_shared<Saved>();
    CoreResult r;
    std::tie(r.y, r.final_state) = dispatch_float(c.x.dtype(), op, [&]<typename T>() {
      return forward<T>(c, *plan, *saved);
    });
    if (want_grad)
      r.backward = [c, plan, saved](const Tensor& d_o, const Tensor& d_final) {
        return dispatch_float(c.x.dtype(), "mamba_chunk_backward",
                              [&]<typename T>() { return backward<T>(c, *plan, *saved, d_o, d_final); });
      };
    return r;
  });
}

}  // namespace lnx::kernels
