// Internal to mamba: the core scan's primitives, the softplus fused into them, and the
// token-level kernels of one lane that both primitives run.
//
// The core scan: y = scale·Cᵀh with h_t = exp(Δ_t ⊙ A) ⊙ h_{t−1} + B_t (Δ_t ⊙ x_t)ᵀ and
// Δ = softplus(dt), over the inputs x [B,T,H,V], dt [B,T,H,V] (dt + dt_bias, before the
// softplus), A [H,K,V] (≤ 0), B [B,T,H,K], C [B,T,H,K], initial_state [N,H,K,V].
//
// A lane is one (group h, block of up to kLane channels d0 … d0+w−1): channels are independent
// in Mamba-1 (each has its own decays exp(Δ[d]·A[n,d])), so a lane's state [K, w] evolves on
// its own; only B and C are shared across a group's lanes (their gradients are summed over
// lanes afterwards). Tasks are (sequence or chunk, group, lane).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "kernels/common/kernel_math.h"
#include "kernels/primitive.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"

namespace lnx::kernels::mamba_detail {

const Primitive& recurrent_primitive();
const Primitive& chunk_primitive();

// x, dt, A, B, C, initial_state: the core scan's inputs.
std::vector<InputSpec> scan_specs();

// ---- the softplus fused into the primitives ----

// softplus(v) = max(v, 0) + log1p(u) with u = e^{−|v|} ∈ (0, 1], and log1p(u) = 2·atanh(s)
// with s = u / (2 + u) ∈ (0, 1/3] (no cancellation for small u), by its series to s¹⁵
// (remainder below 2·(1/3)¹⁷/17, 1e-9 relative). f64 uses libm.
inline float softplus_fast(float v) {
  const float u = exp_f32(-std::abs(v));
  const float s = u / (2.0f + u), s2 = s * s;
  float p = 1.0f / 15.0f;
  p = std::fma(p, s2, 1.0f / 13.0f);
  p = std::fma(p, s2, 1.0f / 11.0f);
  p = std::fma(p, s2, 1.0f / 9.0f);
  p = std::fma(p, s2, 1.0f / 7.0f);
  p = std::fma(p, s2, 1.0f / 5.0f);
  p = std::fma(p, s2, 1.0f / 3.0f);
  p = std::fma(p, s2, 1.0f);
  return std::max(v, 0.0f) + 2.0f * s * p;
}
inline double softplus_fast(double v) { return std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v))); }

// Δ = softplus(pre), elementwise.
template <typename T> Tensor softplus_of(const Tensor& pre) {
  Tensor out = Tensor::empty(pre.shape(), pre.dtype());
  const T* p = pre.data<T>();
  T* o = out.data<T>();
  parallel_for(pre.numel(), 1 << 14, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) o[i] = softplus_fast(p[i]);
  });
  return out;
}

// dpre = dΔ ⊙ σ(pre), in place in dΔ.
template <typename T> void times_sigmoid(const Tensor& d, const Tensor& pre) {
  const T* p = pre.data<T>();
  T* g = d.data<T>();
  parallel_for(pre.numel(), 1 << 14, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) g[i] *= T(1) / (T(1) + fast_exp(-p[i]));
  });
}

// The primitive around a core scan Scan, whose kernels take Δ and give the gradient of Δ as
// "dt": Δ = softplus(dt) is formed here and kept for the backward, and dt's gradient is
// dΔ ⊙ σ(dt), so the softplus costs no tensor op of its own.
template <class Scan> struct WithSoftplus {
  template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved) {
    Tensor delta = softplus_of<T>(a["dt"]);  // [B, T, H, V]
    if (saved) saved->insert("delta", delta);
    return Scan::template forward<T>(a, delta, saved);
  }
  template <typename T>
  static TensorDict backward(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
    TensorDict g = Scan::template backward<T>(a, saved.at("delta"), saved, d_o, d_final);
    times_sigmoid<T>(g.at("dt"), a["dt"]);
    return g;
  }
};

// ---- lane kernels ----

constexpr int64_t kLane = 32;  // channels per lane

// Scratch of the lane kernels, 64-byte aligned: a lane's rows (32 channels) are then whole
// cache lines, and vector loads and stores do not straddle two (malloc aligns to 16 only).
template <typename T> struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <class U> CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete (p, std::align_val_t{64}); }
  template <class U> bool operator==(const CacheAligned<U>&) const { return true; }
};
template <typename T> using LaneVector = std::vector<T, CacheAligned<T>>;

inline int64_t lanes(int64_t V) { return (V + kLane - 1) / kLane; }

// Raw pointers to the scan's inputs, Δ in place of dt.
template <typename T> struct ScanInputs {
  const T *x, *delta;  // [B, T, H, V]
  const T* A;          // [H, K, V]
  const T *B, *C;      // [B, T, H, K]
  const T* h0;         // [N, H, K, V]; null without an initial state
  int64_t H, K, V;
  T scale;
  ScanInputs(const KernelArgs& a, const Tensor& delta_)
      : x(a.ptr<T>("x")),
        delta(delta_.data<T>()),
        A(a.ptr<T>("A")),
        B(a.ptr<T>("B")),
        C(a.ptr<T>("C")),
        h0(a.ptr<T>("initial_state")),
        H(a.L.H),
        K(a.L.K),
        V(a.L.V),
        scale(static_cast<T>(a.scale)) {}
};

// One lane: group h, channels d0 … d0 + w − 1, over the scan's inputs (dl = Δ).
template <typename T> struct Lane {
  const T *x, *dl, *A, *B, *C;  // as ScanInputs
  int64_t H, K, V, h, d0, w;
  T scale;
  Lane(const ScanInputs<T>& in, int64_t h_, int64_t lane)
      : x(in.x),
        dl(in.delta),
        A(in.A),
        B(in.B),
        C(in.C),
        H(in.H),
        K(in.K),
        V(in.V),
        h(h_),
        d0(lane * kLane),
        w(std::min(kLane, in.V - lane * kLane)),
        scale(in.scale) {}
  // A task index (outer, group, lane) as its lane; outer = task / (H · lanes).
  static Lane of_task(const ScanInputs<T>& in, int64_t task) {
    const int64_t nl = lanes(in.V);
    return Lane(in, (task / nl) % in.H, task % nl);
  }
  int64_t index() const { return d0 / kLane; }                            // the lane's index in its group
  int64_t rv(int64_t r) const { return (r * H + h) * V + d0; }            // offset of row r in [.., H, V]
  int64_t rk(int64_t r) const { return (r * H + h) * K; }                 // offset of row r in [.., H, K]
  int64_t kv(int64_t slot) const { return (slot * H + h) * K * V + d0; }  // in [slots, H, K, V]
  const T* Ah() const { return A + h * K * V + d0; }                      // [K, w] with row stride V
};

// The lane's block [K, w] of a [K, V] matrix, to and from a dense [K, w] buffer.
template <typename T> inline void load(T* S, const T* src, const Lane<T>& ln) {
  for (int64_t n = 0; n < ln.K; ++n) std::memcpy(S + n * ln.w, src + n * ln.V, sizeof(T) * ln.w);
}
template <typename T> inline void store(const T* S, T* dst, const Lane<T>& ln) {
  for (int64_t n = 0; n < ln.K; ++n) std::memcpy(dst + n * ln.V, S + n * ln.w, sizeof(T) * ln.w);
}
// The lane's block of src (or zeros when src is null) into S.
template <typename T> inline void load_or_zero(T* S, const T* src, const Lane<T>& ln) {
  if (src)
    load(S, src, ln);
  else
    std::fill(S, S + ln.K * ln.w, T(0));
}

// One token (row r) on the lane state S [K, w]: S ← exp(Δ ⊙ A) ⊙ S + B (Δ ⊙ x)ᵀ.
// kOut: y[0, w) = scale·Cᵀ S. kSaveA: the decays to a [K, w]. dlx: scratch [w].
template <typename T, bool kOut, bool kSaveA> inline void step(const Lane<T>& ln, int64_t r, T* S, T* y, T* a, T* dlx) {
  const T *x = ln.x + ln.rv(r), *dl = ln.dl + ln.rv(r), *Bv = ln.B + ln.rk(r), *Cv = ln.C + ln.rk(r);
  const T* A = ln.Ah();
  const int64_t w = ln.w, V = ln.V;
  for (int64_t d = 0; d < w; ++d) dlx[d] = dl[d] * x[d];
  if constexpr (kOut) std::fill(y, y + w, T(0));
  for (int64_t n = 0; n < ln.K; ++n) {
    T* Sn = S + n * w;
    const T* An = A + n * V;
    const T bn = Bv[n];
    [[maybe_unused]] const T cn = kOut ? ln.scale * Cv[n] : T(0);
    [[maybe_unused]] T* an = kSaveA ? a + n * w : nullptr;
#pragma omp simd
    for (int64_t d = 0; d < w; ++d) {
      const T e = fast_exp(dl[d] * An[d]);
      const T s = e * Sn[d] + bn * dlx[d];
      Sn[d] = s;
      if constexpr (kSaveA) an[d] = e;
      if constexpr (kOut) y[d] += cn * s;
    }
  }
}

// Where a lane's backward writes: dx, dΔ rows ([B,T,H,V]) and its partial dB, dC rows
// ([B,T,H,K], this lane's slice of the per-lane partial sums).
template <typename T> struct LaneGrads { T *dx, *ddl, *dB, *dC; };

// One token in reverse. On entry dS = ∂L/∂h_t without the token's own read; on exit
// dS = ∂L/∂h_{t−1}. Sprev = h_{t−1}, Scur = h_t, a = the token's decays, all [K, w].
// Every gradient is formed from the term it scales (dA, dΔ from dS ⊙ a ⊙ h_{t−1}, not from
// cumulative sums), so they stay accurate when decays are tiny. u, g, dlx: scratch [w].
template <typename T> inline void step_back(const Lane<T>& ln, int64_t r, const T* Sprev, const T* Scur, const T* a,
                                            const T* dy, T* dS, T* dA, const LaneGrads<T>& out, T* u, T* g, T* dlx) {
  const T *x = ln.x + ln.rv(r), *dl = ln.dl + ln.rv(r), *Bv = ln.B + ln.rk(r), *Cv = ln.C + ln.rk(r);
  const T* A = ln.Ah();
  const int64_t w = ln.w, V = ln.V;
  for (int64_t d = 0; d < w; ++d) {
    dlx[d] = dl[d] * x[d];
    u[d] = 0;
    g[d] = 0;
  }
  T* dB = out.dB + ln.rk(r);
  T* dC = out.dC + ln.rk(r);
  for (int64_t n = 0; n < ln.K; ++n) {
    T* dSn = dS + n * w;
    dC[n] = ln.scale * dot(dy, Scur + n * w, w);
    const T cn = ln.scale * Cv[n];
#pragma omp simd
    for (int64_t d = 0; d < w; ++d) dSn[d] += cn * dy[d];
    dB[n] = dot(dSn, dlx, w);
    const T bn = Bv[n];
    const T *An = A + n * V, *an = a + n * w, *Sp = Sprev + n * w;
    T* dAn = dA + n * w;
#pragma omp simd
    for (int64_t d = 0; d < w; ++d) {
      const T ds = dSn[d];
      const T q = ds * an[d] * Sp[d];  // ∂L/∂(Δ·A) at (n, d)
      u[d] += ds * bn;
      g[d] += An[d] * q;
      dAn[d] += dl[d] * q;
      dSn[d] = ds * an[d];
    }
  }
  T *dxr = out.dx + ln.rv(r), *ddr = out.ddl + ln.rv(r);
  for (int64_t d = 0; d < w; ++d) {
    dxr[d] = dl[d] * u[d];
    ddr[d] = x[d] * u[d] + g[d];
  }
}

// Per-thread scratch of the backward: block_backward over up to m tokens, and three lane
// states: the state gradient dS, the lane's dA and a state S0.
template <typename T> struct BackScratch {
  LaneVector<T> St, a, u, g, dlx, dS, dA, S0;
  BackScratch(int64_t m, int64_t K)
      : St(static_cast<size_t>((m + 1) * K * kLane)),
        a(static_cast<size_t>(m * K * kLane)),
        u(kLane),
        g(kLane),
        dlx(kLane),
        dS(static_cast<size_t>(K * kLane)),
        dA(static_cast<size_t>(K * kLane)),
        S0(static_cast<size_t>(K * kLane)) {}
};

// The backward over rows r0 … r0+m−1 of one lane, given the state before them (sc.S0, [K, w])
// and sc.dS = ∂L/∂h after them (in) → ∂L/∂h before them (out). The block's states and decays
// are recomputed from S0 (forward), then the tokens run in reverse. sc.dA [K, w] accumulates.
template <typename T> void block_backward(const Lane<T>& ln, int64_t r0, int64_t m, const T* d_o,
                                          const LaneGrads<T>& out, BackScratch<T>& sc) {
  const int64_t KW = ln.K * ln.w;
  T *St = sc.St.data(), *a = sc.a.data();
  std::copy(sc.S0.begin(), sc.S0.begin() + KW, St);
  for (int64_t i = 0; i < m; ++i) {
    std::copy(St + i * KW, St + (i + 1) * KW, St + (i + 1) * KW);
    step<T, false, true>(ln, r0 + i, St + (i + 1) * KW, nullptr, a + i * KW, sc.dlx.data());
  }
  for (int64_t i = m - 1; i >= 0; --i)
    step_back(ln, r0 + i, St + i * KW, St + (i + 1) * KW, a + i * KW, d_o + ln.rv(r0 + i), sc.dS.data(), sc.dA.data(),
              out, sc.u.data(), sc.g.data(), sc.dlx.data());
}

// The gradients both backwards produce: dx, dΔ (as "dt"), per-part dA (summed over parts:
// sequences or chunks), per-lane dB, dC (summed over lanes), dh0.
template <typename T> struct ScanGrads {
  Tensor dx, ddelta;          // [B, T, H, V]
  Tensor dA_parts;            // [parts, H, K, V]
  Tensor dB_parts, dC_parts;  // [lanes, B·T, H, K]
  Tensor dh0;                 // [N, H, K, V]; undefined without an initial state
  int64_t rows_HK;            // B·T·H·K: one lane's share of dB_parts

  ScanGrads(const KernelArgs& a, int64_t parts) {
    const SequenceLayout& L = a.L;
    const int64_t H = L.H, K = L.K, V = L.V, rows = L.B * L.T, nl = lanes(V);
    dx = Tensor::empty({L.B, L.T, H, V}, a.dtype);
    ddelta = Tensor::empty({L.B, L.T, H, V}, a.dtype);
    // (every part writes its dA; without parts dA is 0)
    dA_parts = parts == 0 ? zeros({1, H, K, V}, a.dtype) : Tensor::empty({parts, H, K, V}, a.dtype);
    dB_parts = Tensor::empty({nl, rows, H, K}, a.dtype);
    dC_parts = Tensor::empty({nl, rows, H, K}, a.dtype);
    if (a.has("initial_state")) dh0 = Tensor::empty({L.N, H, K, V}, a.dtype);
    rows_HK = rows * H * K;
  }
  LaneGrads<T> lane(int64_t lane) const {
    return {dx.data<T>(), ddelta.data<T>(), dB_parts.data<T>() + lane * rows_HK, dC_parts.data<T>() + lane * rows_HK};
  }
  T* dA(const Lane<T>& ln, int64_t part) const { return dA_parts.data<T>() + ln.kv(part); }
  T* dh0_of(const Lane<T>& ln, int64_t n) const { return dh0.defined() ? dh0.data<T>() + ln.kv(n) : nullptr; }

  // By input name, the partial sums summed.
  TensorDict finish(const KernelArgs& a) const {
    TensorDict g;
    g.insert("x", dx);
    g.insert("dt", ddelta);
    g.insert("A", sum_first(dA_parts, a["A"].shape()));
    g.insert("B", sum_first(dB_parts, a["B"].shape()));
    g.insert("C", sum_first(dC_parts, a["C"].shape()));
    if (dh0.defined()) g.insert("initial_state", dh0);
    return g;
  }
  static Tensor sum_first(const Tensor& parts, const Shape& shape) {
    return parts.size(0) == 1 ? reshape(parts, shape) : reshape(sum(parts, {0}), shape);
  }
};

}  // namespace lnx::kernels::mamba_detail
