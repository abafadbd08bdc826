// mamba's recurrent form: a fused token loop per (sequence, group, lane of channels), with a
// hand-written vjp (the lane kernels of scan.h).
//   Forward: h ← exp(Δ_t ⊙ A) ⊙ h + B_t (Δ_t ⊙ x_t)ᵀ, y_t = scale·C_tᵀ h; when a gradient is
//   wanted, the state before every kBlock tokens is kept as a checkpoint.
//   Backward, per task, blocks in reverse: the block's states and decays recomputed from its
//   checkpoint, then tokens in reverse with the running state gradient dS (from dfinal):
//     dS += scale·C_t dy_tᵀ;  dC_t = scale·h_t dy_t;  dB_t = dS (Δ_t ⊙ x_t);
//     q = dS ⊙ a_t ⊙ h_{t−1};  dA += Δ_t ⊙ q;  dΔ_t = x_t ⊙ (dSᵀ B_t) + colsum(A ⊙ q);
//     dx_t = Δ_t ⊙ (dSᵀ B_t);  dS ← a_t ⊙ dS;   and finally dh0 = dS.
//   dB, dC are summed over the lanes of a group, dA over the sequences, afterwards.
#include <memory>
#include <tuple>

#include "kernels/mamba/mamba.h"
#include "kernels/mamba/scan.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels {

using namespace mamba_detail;

namespace {

constexpr int64_t kBlock = 32;  // tokens between state checkpoints

struct Saved {
  Tensor ckpt;                // [blocks, H, K, V]: the state before every block
  std::vector<int64_t> base;  // first block of each sequence (N + 1 entries)
};

template <typename T>
std::pair<Tensor, Tensor> forward(const Core& c, Saved* saved) {
  const SequenceLayout& L = c.L;
  const int64_t H = L.H, K = L.K, V = L.V, nl = lanes(V);
  Tensor o = Tensor::empty({L.B, L.T, H, V}, c.x.dtype());
  Tensor F = Tensor::empty({L.N, H, K, V}, c.x.dtype());
  if (saved) {
    saved->base.assign(1, 0);
    for (int64_t n = 0; n < L.N; ++n)
      saved->base.push_back(saved->base.back() + (L.length(n) + kBlock - 1) / kBlock);
    saved->ckpt = Tensor::empty({saved->base.back(), H, K, V}, c.x.dtype());
  }
  T *op = o.data<T>(), *Fp = F.data<T>();
  T* ck = saved ? saved->ckpt.data<T>() : nullptr;
  const T* h0 = c.h0.defined() ? c.h0.data<T>() : nullptr;
  parallel_for_dynamic(L.N * H * nl, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    std::vector<T> S(static_cast<size_t>(K * kLane)), dlx(kLane);
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = task / (H * nl), h = (task / nl) % H;
      const Lane<T> ln(c, h, task % nl);
      if (h0) load(S.data(), h0 + ln.kv(n), ln);
      else std::fill(S.begin(), S.end(), T(0));
      const int64_t r0 = L.offsets[n], len = L.length(n);
      for (int64_t t = 0; t < len; ++t) {
        if (ck && t % kBlock == 0) store(S.data(), ck + ln.kv(saved->base[n] + t / kBlock), ln);
        step<T, true, false>(ln, r0 + t, S.data(), op + ln.rv(r0 + t), nullptr, dlx.data());
      }
      store(S.data(), Fp + ln.kv(n), ln);
    }
  });
  return {o, F};
}

template <typename T>
CoreGrads backward(const Core& c, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
  const SequenceLayout& L = c.L;
  const int64_t H = L.H, K = L.K, V = L.V, nl = lanes(V), rows = L.B * L.T;
  const DType dtype = c.x.dtype();
  CoreGrads gr;
  gr.dx = Tensor::empty(c.x.shape(), dtype);
  gr.ddelta = Tensor::empty(c.delta.shape(), dtype);
  Tensor dA_parts = Tensor::empty({L.N, H, K, V}, dtype);
  Tensor dB_parts = Tensor::empty({nl, rows, H, K}, dtype);
  Tensor dC_parts = Tensor::empty({nl, rows, H, K}, dtype);
  if (c.h0.defined()) gr.dh0 = Tensor::empty(c.h0.shape(), dtype);
  const T* ck = saved.ckpt.data<T>();
  const T* dop = d_o.data<T>();
  const T* dF = d_final.defined() ? d_final.data<T>() : nullptr;
  T *dx = gr.dx.data<T>(), *ddl = gr.ddelta.data<T>(), *dAp = dA_parts.data<T>();
  T *dBp = dB_parts.data<T>(), *dCp = dC_parts.data<T>();
  T* dh0 = gr.dh0.defined() ? gr.dh0.data<T>() : nullptr;
  parallel_for_dynamic(L.N * H * nl, 1, [&](int64_t b, int64_t e) {
    FlushDenormals ftz;
    BackScratch<T> sc(kBlock, K);
    std::vector<T> dS(static_cast<size_t>(K * kLane)), dA(static_cast<size_t>(K * kLane)),
        S0(static_cast<size_t>(K * kLane));
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = task / (H * nl), h = (task / nl) % H, lane = task % nl;
      const Lane<T> ln(c, h, lane);
      const LaneGrads<T> out{dx, ddl, dBp + lane * rows * H * K, dCp + lane * rows * H * K};
      if (dF) load(dS.data(), dF + ln.kv(n), ln);
      else std::fill(dS.begin(), dS.end(), T(0));
      std::fill(dA.begin(), dA.end(), T(0));
      const int64_t r0 = L.offsets[n], len = L.length(n);
      for (int64_t blk = (len + kBlock - 1) / kBlock - 1; blk >= 0; --blk) {
        const int64_t t0 = blk * kBlock, m = std::min(kBlock, len - t0);
        load(S0.data(), ck + ln.kv(saved.base[n] + blk), ln);
        block_backward(ln, r0 + t0, m, S0.data(), dop, dS.data(), dA.data(), out, sc);
      }
      store(dA.data(), dAp + ln.kv(n), ln);
      if (dh0) store(dS.data(), dh0 + ln.kv(n), ln);
    }
  });
  gr.dA = sum_first(dA_parts, {H, K, V});
  gr.dB = sum_first(dB_parts, c.B.shape());
  gr.dC = sum_first(dC_parts, c.C.shape());
  return gr;
}

}  // namespace

MechanismOutputs mamba_recurrent(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "mamba_recurrent";
  return run_fast(op, in, opt, [op](const Core& c, bool want_grad) {
    auto saved = std::make_shared<Saved>();
    CoreResult r;
    std::tie(r.y, r.final_state) = dispatch_float(c.x.dtype(), op, [&]<typename T>() {
      return forward<T>(c, want_grad ? saved.get() : nullptr);
    });
    if (want_grad)
      r.backward = [c, saved](const Tensor& d_o, const Tensor& d_final) {
        return dispatch_float(c.x.dtype(), "mamba_recurrent_backward",
                              [&]<typename T>() { return backward<T>(c, *saved, d_o, d_final); });
      };
    return r;
  });
}

}  // namespace lnx::kernels
