// Reductions (sum, mean, max, logsumexp, argmax) and scans (cumsum).
//
// Every reduction is brought to one canonical form: a contiguous tensor viewed as
// [A, R, C] reduced over R (the reduced axes, made adjacent by a permute-copy when they are
// not), giving [A, C]. C == 1 reduces contiguous rows; C > 1 adds rows of C elements, which
// vectorises along C.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tensor/cpu/loops.h"
#include "tensor/ops.h"

namespace lnx {

namespace {

struct Canonical {
  Tensor x;  // contiguous, logically [A, R, C]
  int64_t A = 1, R = 1, C = 1;
  Shape out_keepdim;  // the result shape with keepdim
  Shape out;          // the result shape without keepdim
};

Canonical canonicalize(const Tensor& x, const std::vector<int64_t>& axes_in, const char* op) {
  LNX_CHECK(x.defined(), ValueError, "[{}] got an undefined tensor", op);
  std::vector<int64_t> axes = normalize_axes(axes_in, x.dim(), op);
  Canonical c;
  c.out_keepdim = x.shape();
  for (int64_t a : axes) c.out_keepdim[a] = 1;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) c.out.push_back(x.shape()[i]);
  bool adjacent = axes.empty() || axes.back() - axes.front() + 1 == static_cast<int64_t>(axes.size());
  if (adjacent) {
    c.x = x.detach().contiguous();
    if (axes.empty()) return c;  // 0-d: nothing to reduce
    for (int64_t i = 0; i < x.dim(); ++i) {
      int64_t s = x.shape()[i];
      if (i < axes.front())
        c.A *= s;
      else if (i <= axes.back())
        c.R *= s;
      else
        c.C *= s;
    }
    return c;
  }
  std::vector<int64_t> order;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) order.push_back(i);
  for (int64_t a : axes) order.push_back(a);
  c.x = permute(x.detach(), order).contiguous();
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (std::find(axes.begin(), axes.end(), i) == axes.end())
      c.A *= x.shape()[i];
    else
      c.R *= x.shape()[i];
  }
  return c;
}

// Sum over R of [A, R, C] into out [A, C]. Accumulates in T with 16 independent lanes
// (vectorises without reassociation flags).
template <typename T> void sum_kernel(const T* x, int64_t A, int64_t R, int64_t C, T* out) {
  if (C == 1) {
    auto row_sum = [](const T* p, int64_t n) {
      T lanes[16] = {};
      int64_t i = 0;
      for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; ++l) lanes[l] += p[i + l];
      T s = 0;
      for (; i < n; ++i) s += p[i];
      for (int l = 0; l < 16; ++l) s += lanes[l];
      return s;
    };
    if (A >= num_threads() || A * R < kElementwiseGrain) {
      parallel_for(A, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        for (int64_t a = b; a < e; ++a) out[a] = row_sum(x + a * R, R);
      });
      return;
    }
    // Few long rows: split each row over threads, then add the partial sums.
    for (int64_t a = 0; a < A; ++a) {
      int nt = num_threads();
      std::vector<T> partial(nt, T(0));
      int64_t chunk = (R + nt - 1) / nt;
      parallel_for(nt, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          int64_t s = t * chunk, f = std::min(R, s + chunk);
          if (s < f) partial[t] = row_sum(x + a * R + s, f - s);
        }
      });
      T s = 0;
      for (T p : partial) s += p;
      out[a] = s;
    }
    return;
  }
  const int nt = num_threads();
  if (A < nt && R >= 4 * nt && A * R * C >= kElementwiseGrain) {
    // Few outputs, many rows (a bias gradient: [N, D] → [D]): each thread adds a contiguous
    // block of rows into its own partial row, so every thread streams memory in order.
    std::vector<T> partial(static_cast<size_t>(nt) * C);
    for (int64_t a = 0; a < A; ++a) {
      const int64_t chunk = (R + nt - 1) / nt;
      parallel_for(nt, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          T* acc = partial.data() + t * C;
          for (int64_t c = 0; c < C; ++c) acc[c] = 0;
          for (int64_t r = t * chunk; r < std::min(R, (t + 1) * chunk); ++r) {
            const T* row = x + (a * R + r) * C;
            for (int64_t c = 0; c < C; ++c) acc[c] += row[c];
          }
        }
      });
      T* o = out + a * C;
      for (int64_t c = 0; c < C; ++c) o[c] = partial[c];
      for (int t = 1; t < nt; ++t)
        for (int64_t c = 0; c < C; ++c) o[c] += partial[t * C + c];
    }
    return;
  }
  parallel_for(A * C, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
    // Work item = one (a, c); walk contiguous runs of c within one a.
    int64_t i = b;
    while (i < e) {
      int64_t a = i / C, c0 = i % C;
      int64_t c1 = std::min(C, c0 + (e - i));
      T* o = out + a * C;
      for (int64_t c = c0; c < c1; ++c) o[c] = 0;
      for (int64_t r = 0; r < R; ++r) {
        const T* row = x + (a * R + r) * C;
        for (int64_t c = c0; c < c1; ++c) o[c] += row[c];
      }
      i += c1 - c0;
    }
  });
}

// Max over R with the index (within R) of the first maximal element.
template <typename T> void max_kernel(const T* x, int64_t A, int64_t R, int64_t C, T* out, int64_t* idx) {
  parallel_for(A * C, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      int64_t a = i / C, c = i % C;
      const T* p = x + a * R * C + c;
      T best = p[0];
      int64_t bi = 0;
      for (int64_t r = 1; r < R; ++r) {
        T v = p[r * C];
        // NaN wins so it propagates.
        if (v > best || (std::isnan(static_cast<double>(v)) && !std::isnan(static_cast<double>(best)))) {
          best = v;
          bi = r;
        }
      }
      out[i] = best;
      idx[i] = bi;
    }
  });
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  Canonical c = canonicalize(x, axes, "sum");
  Tensor y = Tensor::empty(keepdim ? c.out_keepdim : c.out, x.dtype());
  dispatch_all(x.dtype(), [&]<typename T>() { sum_kernel<T>(c.x.data<T>(), c.A, c.R, c.C, y.data<T>()); });
  if (needs_grad({x}))
    record("sum", {x}, {&y}, [in = x.shape(), kd = c.out_keepdim](const VjpContext& g) -> TensorList {
      return {expand(reshape(g.grad(), kd), in)};
    });
  return y;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  LNX_CHECK(x.defined(), ValueError, "[mean] got an undefined tensor");
  int64_t count = 1;
  for (int64_t a : normalize_axes(axes, x.dim(), "mean")) count *= x.shape()[a];
  LNX_CHECK(is_floating(x.dtype()), DTypeError, "[mean] expected a floating dtype, got {}", dtype_name(x.dtype()));
  return div(sum(x, axes, keepdim), static_cast<double>(std::max<int64_t>(count, 1)));
}

Tensor max(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  Canonical c = canonicalize(x, axes, "max");
  LNX_CHECK(c.R > 0, ShapeError, "[max] cannot reduce an empty axis of shape {}", shape_str(x.shape()));
  Tensor y = Tensor::empty(keepdim ? c.out_keepdim : c.out, x.dtype());
  Tensor idx = Tensor::empty({c.A, c.C}, DType::i64);
  dispatch_all(x.dtype(),
               [&]<typename T>() { max_kernel<T>(c.x.data<T>(), c.A, c.R, c.C, y.data<T>(), idx.data<int64_t>()); });
  if (needs_grad({x})) {
    std::vector<int64_t> red = normalize_axes(axes, x.dim(), "max");
    std::vector<int64_t> order;  // the layout canonicalize used: kept axes, then reduced
    for (int64_t i = 0; i < x.dim(); ++i)
      if (std::find(red.begin(), red.end(), i) == red.end()) order.push_back(i);
    for (int64_t a : red) order.push_back(a);
    const bool adjacent = red.empty() || red.back() - red.front() + 1 == static_cast<int64_t>(red.size());
    if (adjacent) std::iota(order.begin(), order.end(), 0);  // canonicalize did not permute
    record("max", {x}, {&y},
           [in = x.shape(), idx, A = c.A, R = c.R, C = c.C, order](const VjpContext& g) -> TensorList {
             // Scatter each output gradient to its argmax, in the canonical [A, R, C] layout, then
             // undo the permute canonicalize applied.
             Tensor gc = g.grad().contiguous();
             Tensor dx = zeros({A, R, C}, gc.dtype());
             dispatch_float(gc.dtype(), "max", [&]<typename T>() {
               const T* gp = gc.data<T>();
               const int64_t* ip = idx.data<int64_t>();
               T* dp = dx.data<T>();
               for (int64_t i = 0; i < A * C; ++i) dp[(i / C) * R * C + ip[i] * C + i % C] = gp[i];
             });
             Shape permuted(order.size());
             for (size_t k = 0; k < order.size(); ++k) permuted[k] = in[order[k]];
             bool identity = true;
             for (size_t k = 0; k < order.size(); ++k) identity = identity && order[k] == int64_t(k);
             if (identity) return {reshape(dx, in)};
             std::vector<int64_t> inverse(order.size());
             for (size_t k = 0; k < order.size(); ++k) inverse[order[k]] = static_cast<int64_t>(k);
             return {permute(reshape(dx, permuted), inverse).contiguous()};
           });
  }
  return y;
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  LNX_CHECK(x.defined(), ValueError, "[argmax] got an undefined tensor");
  int64_t ax = normalize_axis(axis, x.dim(), "argmax");
  Canonical c = canonicalize(x, {ax}, "argmax");
  LNX_CHECK(c.R > 0, ShapeError, "[argmax] axis {} of {} is empty", axis, shape_str(x.shape()));
  Tensor vals = Tensor::empty({c.A, c.C}, x.dtype());
  Tensor idx = Tensor::empty(keepdim ? c.out_keepdim : c.out, DType::i64);
  dispatch_all(x.dtype(),
               [&]<typename T>() { max_kernel<T>(c.x.data<T>(), c.A, c.R, c.C, vals.data<T>(), idx.data<int64_t>()); });
  return idx;
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  LNX_CHECK(x.defined() && is_floating(x.dtype()), DTypeError, "[logsumexp] expected a floating tensor");
  // log Σ exp(x) = m + log Σ exp(x − m) with m = max(x) held constant: the gradient of the
  // whole expression is softmax(x) whatever m is, so m needs no gradient of its own.
  Tensor m = max(x.detach(), axes, true);
  // Rows that are all −inf would give −inf − (−inf) = NaN; shift them by 0 instead.
  m = where(equal(m, full({}, -INFINITY, x.dtype())), zeros({}, x.dtype()), m);
  Tensor s = log(sum(exp(sub(x, m)), axes, true));
  Tensor y = add(s, m);
  if (keepdim) return y;
  Shape out;
  std::vector<int64_t> red = normalize_axes(axes, x.dim(), "logsumexp");
  for (int64_t i = 0; i < x.dim(); ++i)
    if (std::find(red.begin(), red.end(), i) == red.end()) out.push_back(x.shape()[i]);
  return reshape(y, out);
}

Tensor cumsum(const Tensor& x, int64_t axis, bool reverse) {
  LNX_CHECK(x.defined(), ValueError, "[cumsum] got an undefined tensor");
  int64_t ax = normalize_axis(axis, x.dim(), "cumsum");
  Tensor xc = x.detach().contiguous();
  int64_t A = 1, L = x.shape()[ax], C = 1;
  for (int64_t i = 0; i < ax; ++i) A *= x.shape()[i];
  for (int64_t i = ax + 1; i < x.dim(); ++i) C *= x.shape()[i];
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_all(x.dtype(), [&]<typename T>() {
    const T* xp = xc.data<T>();
    T* yp = y.data<T>();
    parallel_for(A, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(L * C, 1)), [&](int64_t b, int64_t e) {
      for (int64_t a = b; a < e; ++a) {
        const T* xa = xp + a * L * C;
        T* ya = yp + a * L * C;
        for (int64_t s = 0; s < L; ++s) {
          int64_t l = reverse ? L - 1 - s : s;
          const T* prev = s == 0 ? nullptr : ya + (reverse ? l + 1 : l - 1) * C;
          for (int64_t c = 0; c < C; ++c) ya[l * C + c] = xa[l * C + c] + (prev ? prev[c] : T(0));
        }
      }
    });
  });
  if (needs_grad({x}))
    record("cumsum", {x}, {&y},
           [ax, reverse](const VjpContext& c) -> TensorList { return {cumsum(c.grad(), ax, !reverse)}; });
  return y;
}

}  // namespace lnx
