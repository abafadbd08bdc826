// Internal to mamba: the checked inputs, the core scan the fast forms share (its inputs and
// the autodiff wiring around it), and the token-level kernels of one lane.
//
// A lane is one (group h, block of up to kLane channels d0 … d0+w−1): channels are independent
// in Mamba-1 (each has its own decays exp(Δ[d]·A[n,d])), so a lane's state [K, w] evolves on
// its own; only B and C are shared across a group's lanes (their gradients are summed over
// lanes afterwards). Tasks are (sequence or chunk, group, lane).
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/common/layout.h"
#include "tensor/cpu/vec_math.h"
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace lnx::kernels::mamba_detail {

// ---- inputs ----
struct Inputs {
  SequenceLayout L;  // K = state dim, V = channels per group, H = groups
  Tensor x, dt, A_log, dt_bias, B, C, D, h0;  // dt_bias, D, h0 may be undefined
  double scale = 1.0;
};

Inputs check_inputs(const std::string& op, const TensorDict& in, const MechanismOptions& opt);

// ---- the core scan: y = scale·Cᵀh with h_t = exp(Δ_t ⊙ A) ⊙ h_{t−1} + B_t (Δ_t ⊙ x_t)ᵀ ----
struct Core {
  SequenceLayout L;
  Tensor x, delta, A, B, C, h0;  // detached, contiguous; A [H,K,V] (≤ 0); h0 may be undefined
  double scale = 1.0;
  int64_t chunk_size = 64;
};

struct CoreGrads {
  Tensor dx, ddelta, dA, dB, dC, dh0;  // dh0 undefined without an initial state
};

using CoreBackward = std::function<CoreGrads(const Tensor& d_o, const Tensor& d_final)>;
struct CoreResult {
  Tensor y, final_state;  // y without the D skip
  CoreBackward backward;  // set when the caller asked for gradients
};
using CoreFn = std::function<CoreResult(const Core& core, bool want_grad)>;

// Checks the inputs, forms Δ and A with tensor ops, runs fn on the core, records its vjp
// (inputs x, Δ, A, B, C, initial_state) when a gradient is wanted, and adds the D skip.
MechanismOutputs run_fast(const std::string& op, const TensorDict& in, const MechanismOptions& opt,
                          const CoreFn& fn);

// ---- lane kernels ----
constexpr int64_t kLane = 32;  // channels per lane

inline int64_t lanes(int64_t V) { return (V + kLane - 1) / kLane; }

// Flush-to-zero / denormals-are-zero for this thread while in scope (strongly negative decays
// make products far below the normal range; denormal arithmetic is slow).
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(__i386__)
  FlushDenormals() : old_(_mm_getcsr()) { _mm_setcsr(old_ | 0x8040u); }
  ~FlushDenormals() { _mm_setcsr(old_); }
 private:
  unsigned old_;
#endif
 public:
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
};

template <typename T> struct Lane {
  const T *x, *dl, *A, *B, *C;
  int64_t H, K, V, h, d0, w;
  T scale;
  Lane(const Core& c, int64_t h_, int64_t lane)
      : x(c.x.data<T>()), dl(c.delta.data<T>()), A(c.A.data<T>()), B(c.B.data<T>()), C(c.C.data<T>()),
        H(c.L.H), K(c.L.K), V(c.L.V), h(h_), d0(lane * kLane), w(std::min(kLane, c.L.V - lane * kLane)),
        scale(static_cast<T>(c.scale)) {}
  int64_t rv(int64_t r) const { return (r * H + h) * V + d0; }  // offset of row r in [.., H, V]
  int64_t rk(int64_t r) const { return (r * H + h) * K; }       // offset of row r in [.., H, K]
  int64_t kv(int64_t slot) const { return (slot * H + h) * K * V + d0; }  // in [slots, H, K, V]
  const T* Ah() const { return A + h * K * V + d0; }  // [K, w] with row stride V
};

// The lane's block [K, w] of a [K, V] matrix, to and from a dense [K, w] buffer.
template <typename T> inline void load(T* S, const T* src, const Lane<T>& ln) {
  for (int64_t n = 0; n < ln.K; ++n) std::memcpy(S + n * ln.w, src + n * ln.V, sizeof(T) * ln.w);
}
template <typename T> inline void store(const T* S, T* dst, const Lane<T>& ln) {
  for (int64_t n = 0; n < ln.K; ++n) std::memcpy(dst + n * ln.V, S + n * ln.w, sizeof(T) * ln.w);
}

template <typename T> inline T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// One token (row r) on the lane state S [K, w]: S ← exp(Δ ⊙ A) ⊙ S + B (Δ ⊙ x)ᵀ.
// kOut: y[0, w) = scale·Cᵀ S. kSaveA: the decays to a [K, w]. dlx: scratch [w].
template <typename T, bool kOut, bool kSaveA>
inline void step(const Lane<T>& ln, int64_t r, T* S, T* y, T* a, T* dlx) {
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
template <typename T> struct LaneGrads {
  T *dx, *ddl, *dB, *dC;
};

// One token in reverse. On entry dS = ∂L/∂h_t without the token's own read; on exit
// dS = ∂L/∂h_{t−1}. Sprev = h_{t−1}, Scur = h_t, a = the token's decays, all [K, w].
// Every gradient is formed from the term it scales (dA, dΔ from dS ⊙ a ⊙ h_{t−1}, not from
// cumulative sums), so they stay accurate when decays are tiny. u, g, dlx: scratch [w].
template <typename T>
inline void step_back(const Lane<T>& ln, int64_t r, const T* Sprev, const T* Scur, const T* a,
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

// Scratch for block_backward over up to m tokens.
template <typename T> struct BackScratch {
  std::vector<T> St, a, u, g, dlx;
  BackScratch(int64_t m, int64_t K)
      : St(static_cast<size_t>((m + 1) * K * kLane)), a(static_cast<size_t>(m * K * kLane)),
        u(kLane), g(kLane), dlx(kLane) {}
};

// The backward over rows r0 … r0+m−1 of one lane, given the state before them (S0, [K, w])
// and dS = ∂L/∂h after them (in) → ∂L/∂h before them (out). The block's states and decays
// are recomputed from S0 (forward), then the tokens run in reverse. dA [K, w] accumulates.
template <typename T>
void block_backward(const Lane<T>& ln, int64_t r0, int64_t m, const T* S0, const T* d_o, T* dS, T* dA,
                    const LaneGrads<T>& out, BackScratch<T>& sc) {
  const int64_t KW = ln.K * ln.w;
  T *St = sc.St.data(), *a = sc.a.data();
  std::copy(S0, S0 + KW, St);
  for (int64_t i = 0; i < m; ++i) {
    std::copy(St + i * KW, St + (i + 1) * KW, St + (i + 1) * KW);
    step<T, false, true>(ln, r0 + i, St + (i + 1) * KW, nullptr, a + i * KW, sc.dlx.data());
  }
  for (int64_t i = m - 1; i >= 0; --i)
    step_back(ln, r0 + i, St + i * KW, St + (i + 1) * KW, a + i * KW, d_o + ln.rv(r0 + i), dS, dA, out,
              sc.u.data(), sc.g.data(), sc.dlx.data());
}

// Sums per-lane partials [lanes, B, T, H, K] (or per-slot partials) over the first axis.
inline Tensor sum_first(const Tensor& parts, const Shape& shape) {
  return parts.size(0) == 1 ? reshape(parts, shape) : reshape(sum(parts, {0}), shape);
}

}  // namespace lnx::kernels::mamba_detail
