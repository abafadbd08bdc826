// Normalisation and losses: softmax, log_softmax, cross_entropy, l2_normalize, rms_norm.
//
// softmax, log_softmax, cross_entropy and rms_norm are fused primitives over contiguous rows
// (the normalised axis last): each row is handled by one thread, rows are split over threads,
// and the vjps are hand-written kernels over the same rows. Another axis is transposed to the
// end and back. Row reductions accumulate in f64 with independent lanes so they vectorise
// without reassociation flags; f32 exponentials use a branch-free exp that vectorises
// (std::exp does not without -ffast-math).
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "tensor/cpu/loops.h"
#include "tensor/cpu/vec_math.h"
#include "tensor/ops.h"

namespace lnx {

namespace {

// Elements per thread below which a row loop is not worth splitting (rows are exp-heavy).
constexpr int64_t kRowGrain = 16384;

int64_t row_grain(int64_t row_len) { return std::max<int64_t>(1, kRowGrain / std::max<int64_t>(row_len, 1)); }

// ---- row helpers (contiguous rows of n elements) ----

// Maximum (−inf for an empty row). NaN is skipped here: callers feed every element through
// exp(x − max) next, which turns a NaN into a NaN result.
template <typename T> T row_max(const T* p, int64_t n) {
  // max is exact in any order, so letting the compiler reorder it (omp simd) changes nothing;
  // GCC does not vectorise a max reduction without that licence.
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = p[i] > m ? p[i] : m;
  return m;
}

template <typename T> double row_sum(const T* p, int64_t n) {
  double lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) lanes[l] += static_cast<double>(p[i + l]);
  double s = 0;
  for (; i < n; ++i) s += static_cast<double>(p[i]);
  for (int l = 0; l < 16; ++l) s += lanes[l];
  return s;
}

template <typename T> double row_dot(const T* a, const T* b, int64_t n) {
  double lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) lanes[l] += static_cast<double>(a[i + l]) * static_cast<double>(b[i + l]);
  double s = 0;
  for (; i < n; ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  for (int l = 0; l < 16; ++l) s += lanes[l];
  return s;
}

// Σ exp(p[i] − m) for a finite shift m. The exponentials go through a small buffer so that
// both loops are plain maps/sums the compiler vectorises.
template <typename T> double row_sum_exp(const T* p, int64_t n, T m) {
  constexpr int64_t kBuf = 256;
  T buf[kBuf];
  double s = 0;
  for (int64_t b = 0; b < n; b += kBuf) {
    const int64_t len = std::min(kBuf, n - b);
    for (int64_t i = 0; i < len; ++i) buf[i] = fast_exp(p[b + i] - m);
    s += row_sum(buf, len);
  }
  return s;
}

// log Σ exp over a row in one pass, as (m, log Σ exp(x − m)) with m the row maximum: blocks
// small enough to stay in L1 are scanned for their maximum and then summed, the running sum
// rescaled when the maximum grows. Keeping m separate lets callers form x − m exactly before
// subtracting the small log-sum. An all −inf row gives m = −inf and log-sum 0 (so x − m − 0
// is NaN, as for any softmax of such a row); a NaN anywhere makes the log-sum NaN.
template <typename T> struct RowLse {
  T m;
  T log_sum;
};

template <typename T> RowLse<T> row_logsumexp(const T* p, int64_t n) {
  constexpr int64_t kBlock = 1024;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  T m = ninf;
  double s = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    const T bm = row_max(p + b, len);
    if (bm > m) {
      s = m == ninf ? 0.0 : s * std::exp(static_cast<double>(m) - static_cast<double>(bm));
      m = bm;
    }
    // While m is −inf every element so far is −inf (adds 0) or NaN (adds NaN): shift by 0.
    s += row_sum_exp(p + b, len, m == ninf ? T(0) : m);
  }
  if (m == ninf) return {m, s == 0 ? T(0) : std::numeric_limits<T>::quiet_NaN()};
  return {m, static_cast<T>(std::log(s))};
}

void check_float(const Tensor& x, const char* op, const char* what) {
  LNX_CHECK(x.defined(), ValueError, "[{}] {} is undefined", op, what);
  LNX_CHECK(is_floating(x.dtype()), DTypeError, "[{}] {} must be f32 or f64, got {} {}", op, what,
            dtype_name(x.dtype()), shape_str(x.shape()));
}

// ---- softmax / log_softmax over the last axis (the primitives) ----

Tensor softmax_last(const Tensor& x) {
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const int64_t C = x.dim() == 0 ? 1 : x.shape().back();
  const int64_t N = C == 0 ? 0 : x.numel() / C;
  dispatch_float(x.dtype(), "softmax", [&]<typename T>() {
    const T* xp = xc.data<T>();
    T* yp = y.data<T>();
    parallel_for(N, row_grain(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* xr = xp + r * C;
        T* yr = yp + r * C;
        const T m = row_max(xr, C);
        for (int64_t i = 0; i < C; ++i) yr[i] = fast_exp(xr[i] - m);
        const T inv = static_cast<T>(1.0 / row_sum(yr, C));
        for (int64_t i = 0; i < C; ++i) yr[i] *= inv;
      }
    });
  });
  if (needs_grad({x}))
    record("softmax", {x}, {&y}, [y = y.detach(), C, N](const VjpContext& c) -> TensorList {
      // dx = y ⊙ (g − Σ g⊙y)
      Tensor g = c.grad().contiguous();
      Tensor dx = Tensor::empty(y.shape(), y.dtype());
      dispatch_float(y.dtype(), "softmax", [&]<typename T>() {
        const T* gp = g.data<T>();
        const T* yp = y.data<T>();
        T* dp = dx.data<T>();
        parallel_for(N, row_grain(C), [&](int64_t b, int64_t e) {
          for (int64_t r = b; r < e; ++r) {
            const T* gr = gp + r * C;
            const T* yr = yp + r * C;
            T* dr = dp + r * C;
            const T dot = static_cast<T>(row_dot(gr, yr, C));
            for (int64_t i = 0; i < C; ++i) dr[i] = yr[i] * (gr[i] - dot);
          }
        });
      });
      return {dx};
    });
  return y;
}

Tensor log_softmax_last(const Tensor& x) {
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const int64_t C = x.dim() == 0 ? 1 : x.shape().back();
  const int64_t N = C == 0 ? 0 : x.numel() / C;
  dispatch_float(x.dtype(), "log_softmax", [&]<typename T>() {
    const T* xp = xc.data<T>();
    T* yp = y.data<T>();
    parallel_for(N, row_grain(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* xr = xp + r * C;
        T* yr = yp + r * C;
        const RowLse<T> l = row_logsumexp(xr, C);
        for (int64_t i = 0; i < C; ++i) yr[i] = (xr[i] - l.m) - l.log_sum;
      }
    });
  });
  if (needs_grad({x}))
    record("log_softmax", {x}, {&y}, [y = y.detach(), C, N](const VjpContext& c) -> TensorList {
      // dx = g − exp(y)·Σg
      Tensor g = c.grad().contiguous();
      Tensor dx = Tensor::empty(y.shape(), y.dtype());
      dispatch_float(y.dtype(), "log_softmax", [&]<typename T>() {
        const T* gp = g.data<T>();
        const T* yp = y.data<T>();
        T* dp = dx.data<T>();
        parallel_for(N, row_grain(C), [&](int64_t b, int64_t e) {
          for (int64_t r = b; r < e; ++r) {
            const T* gr = gp + r * C;
            const T* yr = yp + r * C;
            T* dr = dp + r * C;
            const T gs = static_cast<T>(row_sum(gr, C));
            for (int64_t i = 0; i < C; ++i) dr[i] = gr[i] - fast_exp(yr[i]) * gs;
          }
        });
      });
      return {dx};
    });
  return y;
}

// Runs a last-axis primitive along any axis by swapping that axis with the last.
template <typename F> Tensor along_axis(const Tensor& x, int64_t axis, const char* op, F&& last_axis_op) {
  check_float(x, op, "x");
  if (x.dim() == 0) return last_axis_op(x);
  const int64_t ax = normalize_axis(axis, x.dim(), op);
  if (ax == x.dim() - 1) return last_axis_op(x);
  return contiguous(transpose(last_axis_op(transpose(x, ax, -1)), ax, -1));
}

// Multi-index of flat position i in shape, as "[i,j,k]".
std::string position_str(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] == 0 ? 0 : i % shape[d];
    i = shape[d] == 0 ? 0 : i / shape[d];
  }
  return fmt::format("[{}]", fmt::join(idx, ","));
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return along_axis(x, axis, "softmax", softmax_last); }

Tensor log_softmax(const Tensor& x, int64_t axis) { return along_axis(x, axis, "log_softmax", log_softmax_last); }

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  check_float(logits, "cross_entropy", "logits");
  LNX_CHECK(targets.defined(), ValueError, "[cross_entropy] targets are undefined");
  LNX_CHECK(logits.dim() >= 1, ShapeError,
            "[cross_entropy] logits are {}: expected at least one dim (the classes, last)", shape_str(logits.shape()));
  const Shape row_shape(logits.shape().begin(), logits.shape().end() - 1);
  LNX_CHECK(targets.shape() == row_shape, ShapeError,
            "[cross_entropy] logits are {} but targets are {}: targets must have logits' shape "
            "without the last (class) dim, {}",
            shape_str(logits.shape()), shape_str(targets.shape()), shape_str(row_shape));
  const int64_t C = logits.shape().back();
  const int64_t N = numel_of(row_shape);

  // Targets as i64, checked: each is ignore_index or in [0, C).
  std::vector<int64_t> tgt(static_cast<size_t>(N));
  dispatch_index(targets.dtype(), "cross_entropy", [&]<typename I>() {
    Tensor tc = targets.detach().contiguous();
    const I* tp = tc.data<I>();
    for (int64_t i = 0; i < N; ++i) {
      const int64_t t = static_cast<int64_t>(tp[i]);
      LNX_CHECK(t == ignore_index || (t >= 0 && t < C), ValueError,
                "[cross_entropy] target {} at position {} of targets {} is outside [0, {}) (the "
                "class count of logits {}) and is not ignore_index ({})",
                t, position_str(i, row_shape), shape_str(row_shape), C, shape_str(logits.shape()), ignore_index);
      tgt[i] = t;
    }
  });
  int64_t count = 0;
  for (int64_t t : tgt) count += t != ignore_index;

  Tensor xc = logits.detach().contiguous();
  Tensor y = Tensor::empty({}, logits.dtype());
  // Per row: the maximum and log Σ exp(x − max), kept for the vjp.
  Tensor row_max_t = Tensor::empty({N}, logits.dtype());
  Tensor row_ls_t = Tensor::empty({N}, logits.dtype());
  dispatch_float(logits.dtype(), "cross_entropy", [&]<typename T>() {
    const T* xp = xc.data<T>();
    T* mp = row_max_t.data<T>();
    T* lp = row_ls_t.data<T>();
    std::vector<double> row_loss(static_cast<size_t>(N), 0.0);
    parallel_for(N, row_grain(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        if (tgt[r] == ignore_index) {
          mp[r] = T(0);
          lp[r] = T(0);
          continue;
        }
        const T* xr = xp + r * C;
        const RowLse<T> l = row_logsumexp(xr, C);
        mp[r] = l.m;
        lp[r] = l.log_sum;
        row_loss[r] = (static_cast<double>(l.m) - static_cast<double>(xr[tgt[r]])) + static_cast<double>(l.log_sum);
      }
    });
    double total = 0;  // summed in row order: the same result for any thread count
    for (double v : row_loss) total += v;
    *y.data<T>() = static_cast<T>(count > 0 ? total / static_cast<double>(count) : 0.0);
  });

  if (needs_grad({logits}))
    record(
        "cross_entropy", {logits}, {&y},
        [xc, tgt = std::move(tgt), row_max_t, row_ls_t, ignore_index, count, C, N](const VjpContext& c) -> TensorList {
          // dx = (softmax(x) − onehot(target))·g/count on rows that count; 0 elsewhere.
          Tensor dx = Tensor::empty(xc.shape(), xc.dtype());
          const double g = c.grad().item();
          dispatch_float(xc.dtype(), "cross_entropy", [&]<typename T>() {
            const T* xp = xc.data<T>();
            const T* mp = row_max_t.data<T>();
            const T* lp = row_ls_t.data<T>();
            T* dp = dx.data<T>();
            const T scale = static_cast<T>(count > 0 ? g / static_cast<double>(count) : 0.0);
            parallel_for(N, row_grain(C), [&](int64_t b, int64_t e) {
              for (int64_t r = b; r < e; ++r) {
                T* dr = dp + r * C;
                if (tgt[r] == ignore_index) {
                  std::fill(dr, dr + C, T(0));
                  continue;
                }
                const T* xr = xp + r * C;
                const T m = mp[r], ls = lp[r];
                for (int64_t i = 0; i < C; ++i) dr[i] = fast_exp((xr[i] - m) - ls) * scale;
                dr[tgt[r]] -= scale;
              }
            });
          });
          return {dx};
        });
  return y;
}

Tensor l2_normalize(const Tensor& x, int64_t axis, double eps) {
  check_float(x, "l2_normalize", "x");
  LNX_CHECK(eps >= 0, ValueError, "[l2_normalize] eps must be >= 0, got {}", eps);
  LNX_CHECK(x.dim() >= 1, ShapeError, "[l2_normalize] x is {}: expected at least one dim", shape_str(x.shape()));
  const int64_t ax = normalize_axis(axis, x.dim(), "l2_normalize");
  // Composite: the gradient is exact through the ops.
  return mul(x, rsqrt(add(sum(mul(x, x), {ax}, true), eps)));
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  check_float(x, "rms_norm", "x");
  LNX_CHECK(eps >= 0, ValueError, "[rms_norm] eps must be >= 0, got {}", eps);
  LNX_CHECK(x.dim() >= 1, ShapeError, "[rms_norm] x is {}: expected at least one dim (D, last)", shape_str(x.shape()));
  const int64_t D = x.shape().back();
  const int64_t N = D == 0 ? 0 : x.numel() / D;
  const bool has_w = weight.defined();
  if (has_w) {
    LNX_CHECK(weight.dtype() == x.dtype(), DTypeError, "[rms_norm] x is {} {} but weight is {} {}: dtypes must match",
              dtype_name(x.dtype()), shape_str(x.shape()), dtype_name(weight.dtype()), shape_str(weight.shape()));
    LNX_CHECK(weight.dim() == 1 && weight.shape()[0] == D, ShapeError,
              "[rms_norm] x is {} but weight is {}: weight must be [{}] (x's last dim)", shape_str(x.shape()),
              shape_str(weight.shape()), D);
  }
  Tensor xc = x.detach().contiguous();
  Tensor wc = has_w ? weight.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor rstd = Tensor::empty({N}, x.dtype());  // 1 / sqrt(mean(x²) + eps) per row
  dispatch_float(x.dtype(), "rms_norm", [&]<typename T>() {
    const T* xp = xc.data<T>();
    const T* wp = has_w ? wc.data<T>() : nullptr;
    T* yp = y.data<T>();
    T* rp = rstd.data<T>();
    parallel_for(N, row_grain(D), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* xr = xp + r * D;
        T* yr = yp + r * D;
        const double ms = row_dot(xr, xr, D) / static_cast<double>(D);
        const T rs = static_cast<T>(1.0 / std::sqrt(ms + eps));
        rp[r] = rs;
        if (wp) {
          for (int64_t i = 0; i < D; ++i) yr[i] = xr[i] * rs * wp[i];
        } else {
          for (int64_t i = 0; i < D; ++i) yr[i] = xr[i] * rs;
        }
      }
    });
  });

  if (needs_grad({x, weight}))
    record("rms_norm", {x, weight}, {&y}, [xc, wc, rstd, N, D](const VjpContext& c) -> TensorList {
      Tensor g = c.grad().contiguous();
      const bool want_x = c.needs_grad(0), want_w = c.needs_grad(1) && wc.defined();
      Tensor dx = want_x ? Tensor::empty(xc.shape(), xc.dtype()) : Tensor();
      Tensor dw;
      dispatch_float(xc.dtype(), "rms_norm", [&]<typename T>() {
        const T* xp = xc.data<T>();
        const T* wp = wc.defined() ? wc.data<T>() : nullptr;
        const T* gp = g.data<T>();
        const T* rp = rstd.data<T>();
        T* dxp = want_x ? dx.data<T>() : nullptr;
        // dweight is a sum over rows: rows go in a fixed number of blocks (set by N
        // alone, so the result does not depend on the thread count), each block sums
        // into its own f64 row, and the block rows are added in order at the end.
        // Without dweight every row is its own block.
        const int64_t nblocks = want_w ? std::min<int64_t>(N, 64) : N;
        const int64_t per_block = N == 0 ? 0 : (N + nblocks - 1) / nblocks;
        std::vector<double> partial(want_w ? static_cast<size_t>(nblocks * D) : 0, 0.0);
        const int64_t grain = std::max<int64_t>(1, row_grain(D) / std::max<int64_t>(per_block, 1));
        parallel_for(nblocks, grain, [&](int64_t b, int64_t e) {
          std::vector<T> gw(static_cast<size_t>(D));
          for (int64_t blk = b; blk < e; ++blk) {
            double* pw = want_w ? partial.data() + blk * D : nullptr;
            const int64_t r0 = blk * per_block, r1 = std::min(N, r0 + per_block);
            for (int64_t r = r0; r < r1; ++r) {
              const T* xr = xp + r * D;
              const T* gr = gp + r * D;
              const T rs = rp[r];
              if (pw)
                for (int64_t i = 0; i < D; ++i) pw[i] += static_cast<double>(gr[i] * xr[i] * rs);
              if (!dxp) continue;
              // dx = rstd·(g⊙w − x·rstd²·mean(g⊙w⊙x))
              if (wp) {
                for (int64_t i = 0; i < D; ++i) gw[i] = gr[i] * wp[i];
              } else {
                std::copy(gr, gr + D, gw.data());
              }
              const double dot = row_dot(gw.data(), xr, D);
              const T k =
                  static_cast<T>(dot / static_cast<double>(D) * static_cast<double>(rs) * static_cast<double>(rs));
              T* dr = dxp + r * D;
              for (int64_t i = 0; i < D; ++i) dr[i] = rs * (gw[i] - xr[i] * k);
            }
          }
        });
        if (want_w) {
          dw = Tensor::empty({D}, xc.dtype());
          std::vector<double> acc(static_cast<size_t>(D), 0.0);
          for (int64_t blk = 0; blk < nblocks; ++blk)
            for (int64_t i = 0; i < D; ++i) acc[i] += partial[blk * D + i];
          T* dwp = dw.data<T>();
          for (int64_t i = 0; i < D; ++i) dwp[i] = static_cast<T>(acc[i]);
        }
      });
      if (c.needs_grad(1) && !dw.defined()) dw = zeros({D}, xc.dtype());
      return {dx, dw};
    });
  return y;
}

}  // namespace lnx
