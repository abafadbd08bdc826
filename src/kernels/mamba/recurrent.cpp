// mamba's recurrent scan primitive: a fused token loop per (sequence, group, lane of
// channels), with a hand-written vjp (the lane kernels of mamba_internal.h).
//   Forward: h ← exp(Δ_t ⊙ A) ⊙ h + B_t (Δ_t ⊙ x_t)ᵀ, y_t = scale·C_tᵀ h; when a gradient is
//   wanted, the state before every kBlock tokens is kept as a checkpoint.
//   Backward, per task, blocks in reverse: the block's states and decays recomputed from its
//   checkpoint, then tokens in reverse with the running state gradient dS (from dfinal):
//     dS += scale·C_t dy_tᵀ;  dC_t = scale·h_t dy_t;  dB_t = dS (Δ_t ⊙ x_t);
//     q = dS ⊙ a_t ⊙ h_{t−1};  dA += Δ_t ⊙ q;  dΔ_t = x_t ⊙ (dSᵀ B_t) + colsum(A ⊙ q);
//     dx_t = Δ_t ⊙ (dSᵀ B_t);  dS ← a_t ⊙ dS;   and finally dh0 = dS.
//   dB, dC are summed over the lanes of a group, dA over the sequences, afterwards.
#include "kernels/mamba/mamba_internal.h"

namespace lnx::kernels::mamba_detail {

namespace {

constexpr int64_t kBlock = 32;  // tokens between state checkpoints

// The first checkpoint of each sequence (N + 1 entries): sequence n keeps one per kBlock tokens.
std::vector<int64_t> checkpoint_offsets(const SequenceLayout& L) {
  std::vector<int64_t> base{0};
  for (int64_t n = 0; n < L.N; ++n) base.push_back(base.back() + (L.length(n) + kBlock - 1) / kBlock);
  return base;
}

struct RecurrentScan {
  // Saved: "checkpoints" [blocks, H, K, V], the state before every block.
  template <typename T> static KernelOutputs forward(const KernelArgs& a, const Tensor& delta, Saved* saved) {
    const SequenceLayout& L = a.L;
    const int64_t H = L.H, K = L.K, V = L.V, nl = lanes(V);
    const ScanInputs<T> in(a, delta);
    Tensor o = Tensor::empty({L.B, L.T, H, V}, a.dtype);
    Tensor F = Tensor::empty({L.N, H, K, V}, a.dtype);
    const std::vector<int64_t> base = checkpoint_offsets(L);
    Tensor checkpoints;
    if (saved) checkpoints = Tensor::empty({base.back(), H, K, V}, a.dtype);
    T *op = o.data<T>(), *Fp = F.data<T>();
    T* ck = saved ? checkpoints.data<T>() : nullptr;
    parallel_for_dynamic(L.N * H * nl, 1, [&](int64_t b, int64_t e) {
      LaneVector<T> S(static_cast<size_t>(K * kLane)), dlx(kLane);
      for (int64_t task = b; task < e; ++task) {
        const int64_t n = task / (H * nl);
        const auto ln = Lane<T>::of_task(in, task);
        load_or_zero(S.data(), in.h0 ? in.h0 + ln.kv(n) : nullptr, ln);
        const int64_t r0 = L.offsets[n], len = L.length(n);
        for (int64_t t = 0; t < len; ++t) {
          if (ck && t % kBlock == 0) store(S.data(), ck + ln.kv(base[n] + t / kBlock), ln);
          step<T, true, false>(ln, r0 + t, S.data(), op + ln.rv(r0 + t), nullptr, dlx.data());
        }
        store(S.data(), Fp + ln.kv(n), ln);
      }
    });
    if (saved) saved->insert("checkpoints", checkpoints);
    return {o, F};
  }

  template <typename T> static TensorDict backward(const KernelArgs& a, const Tensor& delta, const Saved& saved,
                                                   const Tensor& d_o, const Tensor& d_final) {
    const SequenceLayout& L = a.L;
    const int64_t H = L.H, K = L.K, nl = lanes(L.V);
    const ScanInputs<T> in(a, delta);
    const ScanGrads<T> grads(a, L.N);
    const std::vector<int64_t> base = checkpoint_offsets(L);
    const T *ck = saved.at("checkpoints").data<T>(), *dop = d_o.data<T>();
    const T* dF = d_final.defined() ? d_final.data<T>() : nullptr;
    parallel_for_dynamic(L.N * H * nl, 1, [&](int64_t b, int64_t e) {
      BackScratch<T> sc(kBlock, K);
      for (int64_t task = b; task < e; ++task) {
        const int64_t n = task / (H * nl);
        const auto ln = Lane<T>::of_task(in, task);
        const LaneGrads<T> out = grads.lane(ln.index());
        load_or_zero(sc.dS.data(), dF ? dF + ln.kv(n) : nullptr, ln);
        std::fill(sc.dA.begin(), sc.dA.end(), T(0));
        const int64_t r0 = L.offsets[n], len = L.length(n);
        for (int64_t blk = (len + kBlock - 1) / kBlock - 1; blk >= 0; --blk) {
          const int64_t t0 = blk * kBlock;
          load(sc.S0.data(), ck + ln.kv(base[n] + blk), ln);
          block_backward(ln, r0 + t0, std::min(kBlock, len - t0), dop, out, sc);
        }
        store(sc.dA.data(), grads.dA(ln, n), ln);
        if (T* dh0 = grads.dh0_of(ln, n)) store(sc.dS.data(), dh0, ln);
      }
    });
    return grads.finish(a);
  }
};

}  // namespace

const Primitive& recurrent_primitive() {
  static const Primitive p = make_primitive<WithSoftplus<RecurrentScan>>("mamba_recurrent", scan_specs(), false);
  return p;
}

}  // namespace lnx::kernels::mamba_detail
