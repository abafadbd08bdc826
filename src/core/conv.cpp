// Fused causal_conv1d: one primitive with a hand-written vjp (the definition it is tested
// against is causal_conv1d_reference in conv_reference.cpp).
//
// Each sequence n is read through its "extended input" xp_n = [cache_n (W−1 rows); x_n (L rows)]
// (zeros for the cache rows of a fresh sequence), so that
//   pre[t] = bias + Σ_w weight[:, w] ⊙ xp[t + w],   y[t] = act(pre[t]),   cache_out = xp[L …]
// Work items are (sequence, block of channels): an item owns its y rows, its cache rows and, in
// backward, its dx / dcache rows, so no two threads write the same output. Inner loops run over
// a contiguous block of channels (the weight is transposed to [W, D] for that), which the
// compiler vectorises.
//
// Backward, per item, walks the extended rows i = 0 … L+W−2 once, keeping the last W rows of
//   gp[t] = dy[t] ⊙ act'(pre[t])   (pre recomputed: W multiply-adds, cheaper than storing it)
// in a ring, and forms
//   dxp[i] = Σ_w weight[:, w] ⊙ gp[i − w]  (+ dcache_out[i − L] for the rows that became the cache)
// dxp rows below W−1 are the incoming cache's gradient, the others x's. dweight and dbias are
// sums over all tokens: they go into f64 partials per (group of sequences, channel block), the
// groups fixed by N alone, and are added in group order (the result does not depend on the
// thread count).
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/conv.h"
#include "tensor/autograd.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::core {

namespace {

// Channels per work item. Rows of x and y are D apart, so an item walks T rows of a block:
// a narrow block (64 channels: 256 bytes per row) touches a new page per row and is bound by
// TLB misses; a wide one reads long contiguous runs. Blocks narrow (to kMinChannelBlock) only
// until every thread has work. The block width does not change any result.
constexpr int64_t kMaxChannelBlock = 512;  // accumulators of one row: 2–4 KiB, in L1
constexpr int64_t kMinChannelBlock = 64;
constexpr int64_t kItemGrain = 1 << 15;   // multiply-adds below which a work item is not split off
constexpr int64_t kMaxWeightGroups = 64;  // sequence groups of the dweight/dbias partials

// Everything the kernels need about the call, fixed at forward time.
struct Plan {
  int64_t D = 0, W = 0, N = 0, cb = 0, nblk = 0;  // cb: channels per block, nblk: blocks
  std::vector<int64_t> start, len;                // per sequence: first row in x viewed as [rows, D], length
  bool silu = false;
  Tensor x, wt, bias, cache;  // detached, contiguous; wt is weight transposed to [W, D]
};

// Row i of sequence n's extended input (a pointer to D values).
template <typename T> const T* xp_row(const Plan& p, const T* x, const T* cache, const T* zero, int64_t n, int64_t i) {
  const int64_t K = p.W - 1;
  if (i >= K) return x + (p.start[static_cast<size_t>(n)] + i - K) * p.D;
  return cache ? cache + (n * K + i) * p.D : zero;
}

// weight [D, W] → [W, D], by a plain loop: a decoding step convolves one token per call, and
// the strided copy of the general transpose cost more than the convolution itself.
Tensor transposed_weight(const Tensor& weight) {
  const int64_t D = weight.size(0), W = weight.size(1);
  Tensor wt = Tensor::empty({W, D}, weight.dtype());
  dispatch_float(weight.dtype(), "causal_conv1d", [&]<typename T>() {
    const T* src = weight.data<T>();
    T* dst = wt.data<T>();
    for (int64_t d = 0; d < D; ++d)
      for (int64_t w = 0; w < W; ++w) dst[w * D + d] = src[d * W + w];
  });
  return wt;
}

// Work items between two threads: enough multiply-adds per thread to pay for the split.
int64_t item_grain(const Plan& p, int64_t items) {
  int64_t rows = 0;
  for (int64_t l : p.len) rows += l + p.W - 1;
  const int64_t work = std::max<int64_t>(1, rows * p.D * p.W);
  return std::max<int64_t>(1, kItemGrain * items / work);
}

// pre-activation of row t of sequence n, channels [d0, d0 + nd), into acc.
template <typename T> void pre_activation(const Plan& p, const T* x, const T* cache, const T* zero, const T* wt,
                                          const T* bias, int64_t n, int64_t t, int64_t d0, int64_t nd,
                                          T* __restrict acc) {
  for (int64_t d = 0; d < nd; ++d) acc[d] = bias ? bias[d0 + d] : T(0);
  for (int64_t w = 0; w < p.W; ++w) {
    const T* __restrict r = xp_row(p, x, cache, zero, n, t + w) + d0;
    const T* __restrict wr = wt + w * p.D + d0;
    for (int64_t d = 0; d < nd; ++d) acc[d] += wr[d] * r[d];
  }
}

template <typename T> void conv_forward(const Plan& p, Tensor& y, Tensor& cache_out) {
  const T* x = p.x.data<T>();
  const T* wt = p.wt.data<T>();
  const T* bias = p.bias.defined() ? p.bias.data<T>() : nullptr;
  const T* cache = p.cache.defined() ? p.cache.data<T>() : nullptr;
  const std::vector<T> zero(static_cast<size_t>(p.D), T(0));
  T* yp = y.data<T>();
  T* cp = cache_out.data<T>();
  const int64_t K = p.W - 1, items = p.N * p.nblk;
  parallel_for(items, item_grain(p, items), [&](int64_t b, int64_t e) {
    T acc[kMaxChannelBlock];
    for (int64_t item = b; item < e; ++item) {
      const int64_t n = item / p.nblk, d0 = (item % p.nblk) * p.cb;
      const int64_t nd = std::min(p.cb, p.D - d0), L = p.len[static_cast<size_t>(n)];
      for (int64_t t = 0; t < L; ++t) {
        pre_activation(p, x, cache, zero.data(), wt, bias, n, t, d0, nd, acc);
        T* __restrict yr = yp + (p.start[static_cast<size_t>(n)] + t) * p.D + d0;
        if (p.silu) {
          for (int64_t d = 0; d < nd; ++d) yr[d] = acc[d] / (T(1) + fast_exp(-acc[d]));
        } else {
          for (int64_t d = 0; d < nd; ++d) yr[d] = acc[d];
        }
      }
      for (int64_t j = 0; j < K; ++j)  // the last W−1 extended rows become the cache
        std::copy_n(xp_row(p, x, cache, zero.data(), n, L + j) + d0, nd, cp + (n * K + j) * p.D + d0);
    }
  });
}

struct ConvGrads {
  Tensor dx, dweight, dbias, dcache;
};

template <typename T> ConvGrads conv_backward(const Plan& p, const Tensor& gy_t, const Tensor& gc_t, bool want_x,
                                              bool want_w, bool want_b, bool want_c) {
  const T* x = p.x.data<T>();
  const T* wt = p.wt.data<T>();
  const T* bias = p.bias.defined() ? p.bias.data<T>() : nullptr;
  const T* cache = p.cache.defined() ? p.cache.data<T>() : nullptr;
  const T* gy = gy_t.data<T>();
  const T* gc = gc_t.data<T>();
  const std::vector<T> zero(static_cast<size_t>(p.D), T(0));
  const int64_t D = p.D, W = p.W, K = W - 1;
  const DType dtype = p.x.dtype();
  ConvGrads g;
  if (want_x) g.dx = Tensor::empty(p.x.shape(), dtype);
  want_c = want_c && cache != nullptr;
  if (want_c) g.dcache = Tensor::empty(p.cache.shape(), dtype);
  T* dx = want_x ? g.dx.data<T>() : nullptr;
  T* dc = want_c ? g.dcache.data<T>() : nullptr;
  const bool want_xp = want_x || want_c, want_wb = want_w || want_b;

  // Sequence groups for the dweight/dbias partials: [G][W + 1][D] (W weight rows, then bias).
  const int64_t G = want_wb ? std::min(p.N, kMaxWeightGroups) : p.N;
  const int64_t per_group = G == 0 ? 0 : (p.N + G - 1) / G;
  std::vector<double> partial(want_wb ? static_cast<size_t>(G * (W + 1) * D) : 0, 0.0);
  const int64_t items = G * p.nblk;
  parallel_for(items, item_grain(p, items), [&](int64_t b, int64_t e) {
    std::vector<T> ring(static_cast<size_t>(W * p.cb));
    T acc[kMaxChannelBlock], dr[kMaxChannelBlock];
    for (int64_t item = b; item < e; ++item) {
      const int64_t grp = item / p.nblk, d0 = (item % p.nblk) * p.cb;
      const int64_t nd = std::min(p.cb, D - d0);
      double* pw = want_wb ? partial.data() + grp * (W + 1) * D : nullptr;
      for (int64_t n = grp * per_group; n < std::min(p.N, (grp + 1) * per_group); ++n) {
        const int64_t L = p.len[static_cast<size_t>(n)], s = p.start[static_cast<size_t>(n)];
        for (int64_t i = 0; i < L + K; ++i) {
          T* __restrict gi = ring.data() + (i % W) * p.cb;
          if (i < L) {
            const T* __restrict gr = gy + (s + i) * D + d0;
            if (p.silu) {  // silu'(a) = σ(a)·(1 + a·(1 − σ(a)))
              pre_activation(p, x, cache, zero.data(), wt, bias, n, i, d0, nd, acc);
              for (int64_t d = 0; d < nd; ++d) {
                const T sg = T(1) / (T(1) + fast_exp(-acc[d]));
                gi[d] = gr[d] * sg * (T(1) + acc[d] * (T(1) - sg));
              }
            } else {
              std::copy_n(gr, nd, gi);
            }
            if (pw) {
              for (int64_t w = 0; w < W; ++w) {
                const T* __restrict r = xp_row(p, x, cache, zero.data(), n, i + w) + d0;
                double* __restrict pr = pw + w * D + d0;
                for (int64_t d = 0; d < nd; ++d) pr[d] += static_cast<double>(gi[d] * r[d]);
              }
              double* __restrict pb = pw + W * D + d0;
              for (int64_t d = 0; d < nd; ++d) pb[d] += static_cast<double>(gi[d]);
            }
          } else {
            std::fill_n(gi, nd, T(0));  // no token i: its gp is zero
          }
          if (!want_xp) continue;
          T* dst = i < K ? (dc ? dc + (n * K + i) * D + d0 : nullptr) : (dx ? dx + (s + i - K) * D + d0 : nullptr);
          if (!dst) continue;
          if (i >= L) {  // this extended row became cache row i − L
            std::copy_n(gc + (n * K + i - L) * D + d0, nd, dr);
          } else {
            std::fill_n(dr, nd, T(0));
          }
          for (int64_t w = 0; w <= std::min(i, K); ++w) {
            const T* __restrict gg = ring.data() + ((i - w) % W) * p.cb;
            const T* __restrict wr = wt + w * D + d0;
            for (int64_t d = 0; d < nd; ++d) dr[d] += wr[d] * gg[d];
          }
          std::copy_n(dr, nd, dst);
        }
      }
    }
  });
  if (want_w) {
    g.dweight = Tensor::empty({D, W}, dtype);
    T* dw = g.dweight.data<T>();
    for (int64_t d = 0; d < D; ++d)
      for (int64_t w = 0; w < W; ++w) {
        double acc = 0;
        for (int64_t grp = 0; grp < G; ++grp) acc += partial[static_cast<size_t>((grp * (W + 1) + w) * D + d)];
        dw[d * W + w] = static_cast<T>(acc);
      }
  }
  if (want_b) {
    g.dbias = Tensor::empty({D}, dtype);
    T* db = g.dbias.data<T>();
    for (int64_t d = 0; d < D; ++d) {
      double acc = 0;
      for (int64_t grp = 0; grp < G; ++grp) acc += partial[static_cast<size_t>((grp * (W + 1) + W) * D + d)];
      db[d] = static_cast<T>(acc);
    }
  }
  return g;
}

}  // namespace

ConvOutput causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_activation,
                         const Tensor& cache, const Tensor& cu_seqlens) {
  auto plan = std::make_shared<Plan>();
  Plan& p = *plan;
  p.len = detail::check_causal_conv1d_args(x, weight, bias, cache, cu_seqlens);
  p.D = x.size(2);
  p.W = weight.size(1);
  p.N = static_cast<int64_t>(p.len.size());
  p.cb = std::min(p.D, kMaxChannelBlock);
  const int64_t want_items = 2 * static_cast<int64_t>(num_threads());
  while (p.cb > kMinChannelBlock && p.N * ((p.D + p.cb - 1) / p.cb) < want_items) p.cb /= 2;
  p.cb = std::max<int64_t>(p.cb, 1);
  p.nblk = (p.D + p.cb - 1) / p.cb;
  p.silu = silu_activation;
  // Sequence n starts at row Σ_{m<n} len_m of x viewed as [B·T, D]: packed sequences by their
  // offsets, and dense batch rows at b·T (all lengths are T).
  int64_t row = 0;
  for (int64_t l : p.len) {
    p.start.push_back(row);
    row += l;
  }
  p.x = x.detach().contiguous();
  p.wt = transposed_weight(weight.detach().contiguous());
  if (bias.defined()) p.bias = bias.detach().contiguous();
  if (cache.defined()) p.cache = cache.detach().contiguous();

  ConvOutput out;
  out.y = Tensor::empty(x.shape(), x.dtype());
  out.cache = Tensor::empty({p.N, p.W - 1, p.D}, x.dtype());
  dispatch_float(x.dtype(), "causal_conv1d", [&]<typename T>() { conv_forward<T>(p, out.y, out.cache); });

  const TensorList inputs{x, weight, bias, cache};
  if (needs_grad(inputs))
    record("causal_conv1d", inputs, {&out.y, &out.cache}, [plan](const VjpContext& c) -> TensorList {
      const Tensor gy = c.grad(0).contiguous(), gc = c.grad(1).contiguous();
      ConvGrads g = dispatch_float(plan->x.dtype(), "causal_conv1d", [&]<typename T>() {
        return conv_backward<T>(*plan, gy, gc, c.needs_grad(0), c.needs_grad(1), c.needs_grad(2), c.needs_grad(3));
      });
      return {g.dx, g.dweight, g.dbias, g.dcache};
    });
  return out;
}

}  // namespace lnx::core
