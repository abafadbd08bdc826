// Loop drivers for elementwise kernels over strided tensors. Dimensions are coalesced first
// (adjacent dims that are contiguous for every operand merge, size-1 dims drop), so the
// common cases run as one flat loop; what remains runs row by row, rows split over threads.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/cpu/parallel.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"

namespace lnx {

// Elements per thread below which a loop is not worth splitting.
inline constexpr int64_t kElementwiseGrain = 32768;

// Strides of t viewed in an index space of shape out (t broadcasts to out): 0 where t is
// broadcast, t's strides elsewhere.
Strides broadcast_strides(const Tensor& t, const Shape& out);

template <size_t NT> struct StridedLayout {
  Shape shape;                      // coalesced shape (at least one dim)
  std::array<Strides, NT> strides;  // per operand, same rank as shape
};

template <size_t NT> StridedLayout<NT> coalesce(const Shape& shape, const std::array<Strides, NT>& strides) {
  StridedLayout<NT> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!out.shape.empty()) {
      bool merge = true;
      for (size_t t = 0; t < NT; ++t)
        if (out.strides[t].back() != strides[t][d] * shape[d]) merge = false;
      if (merge) {
        out.shape.back() *= shape[d];
        for (size_t t = 0; t < NT; ++t) out.strides[t].back() = strides[t][d];
        continue;
      }
    }
    out.shape.push_back(shape[d]);
    for (size_t t = 0; t < NT; ++t) out.strides[t].push_back(strides[t][d]);
  }
  if (out.shape.empty()) {
    out.shape.push_back(1);
    for (size_t t = 0; t < NT; ++t) out.strides[t].push_back(0);
  }
  return out;
}

// Calls f(offsets, n, inner_strides) for every row of the index space `shape` (the last
// coalesced dim is the row); offsets[t] is operand t's element offset of the row start.
// Rows are split over threads.
template <size_t NT, typename F> void for_each_row(const Shape& shape, const std::array<Strides, NT>& strides, F&& f) {
  if (numel_of(shape) == 0) return;
  StridedLayout<NT> L = coalesce<NT>(shape, strides);
  const int64_t nd = static_cast<int64_t>(L.shape.size());
  const int64_t inner = L.shape.back();
  std::array<int64_t, NT> inner_strides;
  for (size_t t = 0; t < NT; ++t) inner_strides[t] = L.strides[t].back();
  const int64_t rows = numel_of(L.shape) / inner;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / inner);
  parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      std::array<int64_t, NT> off{};
      int64_t rem = r;
      for (int64_t d = nd - 2; d >= 0; --d) {
        int64_t i = rem % L.shape[d];
        rem /= L.shape[d];
        for (size_t t = 0; t < NT; ++t) off[t] += i * L.strides[t][d];
      }
      f(off, inner, inner_strides);
    }
  });
}

// out = f(x) elementwise; out is a fresh contiguous tensor of x's shape and dtype `odt`.
template <typename TI, typename TO, typename F> void unary_kernel(const Tensor& x, const Tensor& out, F&& f) {
  const TI* xp = static_cast<const TI*>(x.raw_data());
  TO* op = static_cast<TO*>(out.raw_data());
  if (x.is_contiguous()) {
    parallel_for(x.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) op[i] = f(xp[i]);
    });
    return;
  }
  for_each_row<2>(x.shape(), {x.strides(), out.strides()},
                  [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                    const TI* xr = xp + off[0];
                    TO* orow = op + off[1];
                    for (int64_t i = 0; i < n; ++i) orow[i * st[1]] = f(xr[i * st[0]]);
                  });
}

// out = f(a, b) with broadcasting; out is fresh and contiguous in the broadcast shape.
template <typename TA, typename TB, typename TO, typename F>
void binary_kernel(const Tensor& a, const Tensor& b, const Tensor& out, F&& f) {
  const TA* ap = static_cast<const TA*>(a.raw_data());
  const TB* bp = static_cast<const TB*>(b.raw_data());
  TO* op = static_cast<TO*>(out.raw_data());
  const int64_t n = out.numel();
  if (a.is_contiguous() && b.is_contiguous() && a.numel() == n && b.numel() == n) {
    parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) op[i] = f(ap[i], bp[i]);
    });
    return;
  }
  if (a.is_contiguous() && a.numel() == n && b.numel() == 1) {
    const TB bv = *bp;
    parallel_for(n, kElementwiseGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) op[i] = f(ap[i], bv);
    });
    return;
  }
  for_each_row<3>(out.shape(), {broadcast_strides(a, out.shape()), broadcast_strides(b, out.shape()), out.strides()},
                  [&](const std::array<int64_t, 3>& off, int64_t cnt, const std::array<int64_t, 3>& st) {
                    const TA* ar = ap + off[0];
                    const TB* br = bp + off[1];
                    TO* orow = op + off[2];
                    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                      for (int64_t i = 0; i < cnt; ++i) orow[i] = f(ar[i], br[i]);
                    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
                      const TB bv = *br;
                      for (int64_t i = 0; i < cnt; ++i) orow[i] = f(ar[i], bv);
                    } else if (st[0] == 0 && st[1] == 1 && st[2] == 1) {
                      const TA av = *ar;
                      for (int64_t i = 0; i < cnt; ++i) orow[i] = f(av, br[i]);
                    } else {
                      for (int64_t i = 0; i < cnt; ++i) orow[i * st[2]] = f(ar[i * st[0]], br[i * st[1]]);
                    }
                  });
}

// Copies src (any layout) into dst (any layout, same shape), converting element types.
void copy_into(const Tensor& src, const Tensor& dst);

}  // namespace lnx
