// Joining, splitting, padding and triangular masks. Forwards copy through copy_into into
// views of a fresh output; vjps slice (concat, pad), join (split) or mask (tril, triu) the
// gradient.
#include <algorithm>

#include "tensor/cpu/loops.h"
#include "tensor/ops.h"

namespace lnx {

namespace {

// A view of t's first `len` elements along axis starting at `start` (no autodiff history).
Tensor narrow_view(const Tensor& t, int64_t axis, int64_t start, int64_t len) {
  Shape shape = t.shape();
  shape[axis] = len;
  return make_view(t, shape, t.strides(), t.offset() + start * t.strides()[axis]);
}

// Zeros the elements outside the kept triangle of y (contiguous, last two axes [R, C]):
// tril keeps j − i ≤ k, triu keeps j − i ≥ k.
template <typename T> void mask_triangle(T* y, int64_t rows, int64_t R, int64_t C, int64_t k, bool lower) {
  parallel_for(rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t i = r % R;
      T* row = y + r * C;
      // Zero the columns [z0, z1).
      int64_t z0, z1;
      if (lower) {
        z0 = std::clamp<int64_t>(i + k + 1, 0, C);
        z1 = C;
      } else {
        z0 = 0;
        z1 = std::clamp<int64_t>(i + k, 0, C);
      }
      for (int64_t j = z0; j < z1; ++j) row[j] = T(0);
    }
  });
}

Tensor triangle(const Tensor& x, int64_t k, bool lower) {
  const char* op = lower ? "tril" : "triu";
  LNX_CHECK(x.defined(), ValueError, "[{}] got an undefined tensor", op);
  LNX_CHECK(x.dim() >= 2, ShapeError, "[{}] expected at least 2 dims (a matrix), got {}", op, shape_str(x.shape()));
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  copy_into(x, y);
  const int64_t R = x.shape()[x.dim() - 2], C = x.shape()[x.dim() - 1];
  if (y.numel() > 0)
    dispatch_all(x.dtype(), [&]<typename T>() { mask_triangle<T>(y.data<T>(), y.numel() / C, R, C, k, lower); });
  if (needs_grad({x}))
    record(op, {x}, {&y},
           [k, lower](const VjpContext& c) -> TensorList { return {lower ? tril(c.grad(), k) : triu(c.grad(), k)}; });
  return y;
}

}  // namespace

Tensor concat(const TensorList& xs, int64_t axis) {
  LNX_CHECK(!xs.empty(), ValueError, "[concat] got no tensors to join");
  for (size_t i = 0; i < xs.size(); ++i) LNX_CHECK(xs[i].defined(), ValueError, "[concat] tensor {} is undefined", i);
  const Tensor& first = xs[0];
  LNX_CHECK(first.dim() >= 1, ShapeError, "[concat] cannot join 0-d tensors (tensor 0 is {})",
            shape_str(first.shape()));
  const int64_t ax = normalize_axis(axis, first.dim(), "concat");
  Shape out_shape = first.shape();
  out_shape[ax] = 0;
  std::vector<int64_t> offsets(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    LNX_CHECK(t.dtype() == first.dtype(), DTypeError,
              "[concat] tensor {} is {} but tensor 0 is {}: all tensors need one dtype", i, dtype_name(t.dtype()),
              dtype_name(first.dtype()));
    bool fits = t.dim() == first.dim();
    for (int64_t d = 0; fits && d < first.dim(); ++d) fits = d == ax || t.shape()[d] == first.shape()[d];
    LNX_CHECK(fits, ShapeError, "[concat] tensor {} is {} but tensor 0 is {}: shapes must match except along axis {}",
              i, shape_str(t.shape()), shape_str(first.shape()), axis);
    offsets[i] = out_shape[ax];
    out_shape[ax] += t.shape()[ax];
  }
  Tensor y = Tensor::empty(out_shape, first.dtype());
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i].numel() > 0) copy_into(xs[i], narrow_view(y, ax, offsets[i], xs[i].shape()[ax]));
  if (needs_grad(xs)) {
    std::vector<int64_t> lens(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) lens[i] = xs[i].shape()[ax];
    record("concat", xs, {&y}, [ax, offsets, lens](const VjpContext& c) -> TensorList {
      TensorList grads(offsets.size());
      for (size_t i = 0; i < offsets.size(); ++i)
        if (c.needs_grad(i)) grads[i] = slice(c.grad(), ax, offsets[i], offsets[i] + lens[i]);
      return grads;
    });
  }
  return y;
}

TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  LNX_CHECK(x.defined(), ValueError, "[split] got an undefined tensor");
  LNX_CHECK(x.dim() >= 1, ShapeError, "[split] cannot split a 0-d tensor");
  const int64_t ax = normalize_axis(axis, x.dim(), "split");
  LNX_CHECK(!sizes.empty(), ValueError, "[split] got no sizes");
  int64_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    LNX_CHECK(sizes[i] >= 0, ValueError, "[split] size {} is {}; sizes must be non-negative", i, sizes[i]);
    LNX_CHECK(!__builtin_add_overflow(total, sizes[i], &total), ValueError, "[split] sizes [{}] overflow when added",
              fmt::join(sizes, ","));
  }
  LNX_CHECK(total == x.shape()[ax], ValueError, "[split] sizes [{}] add up to {} but axis {} of {} has length {}",
            fmt::join(sizes, ","), total, axis, shape_str(x.shape()), x.shape()[ax]);
  // Views over x's storage, made by one multi-output node so backward joins the pieces'
  // gradients with one concat (instead of one zero-filled input per piece).
  TensorList ys;
  ys.reserve(sizes.size());
  int64_t start = 0;
  for (int64_t s : sizes) {
    ys.push_back(narrow_view(x, ax, start, s));
    start += s;
  }
  if (needs_grad({x})) {
    std::vector<Tensor*> outs;
    for (auto& y : ys) outs.push_back(&y);
    record("split", {x}, outs, [ax](const VjpContext& c) -> TensorList { return {concat(c.grads, ax)}; });
  }
  return ys;
}

Tensor pad(const Tensor& x, const std::vector<std::pair<int64_t, int64_t>>& pads, double value) {
  LNX_CHECK(x.defined(), ValueError, "[pad] got an undefined tensor");
  LNX_CHECK(static_cast<int64_t>(pads.size()) <= x.dim(), ShapeError,
            "[pad] got pads for {} axes but the tensor {} has {}", pads.size(), shape_str(x.shape()), x.dim());
  Shape out_shape = x.shape();
  for (size_t d = 0; d < pads.size(); ++d) {
    LNX_CHECK(pads[d].first >= 0 && pads[d].second >= 0, ValueError,
              "[pad] pads ({}, {}) for axis {} are negative; pads must be >= 0", pads[d].first, pads[d].second, d);
    LNX_CHECK(!__builtin_add_overflow(out_shape[d], pads[d].first, &out_shape[d]) &&
                  !__builtin_add_overflow(out_shape[d], pads[d].second, &out_shape[d]),
              ShapeError, "[pad] padding axis {} by ({}, {}) overflows", d, pads[d].first, pads[d].second);
  }
  Tensor y = full(out_shape, value, x.dtype());
  int64_t offset = 0;
  for (size_t d = 0; d < pads.size(); ++d) offset += pads[d].first * y.strides()[d];
  if (x.numel() > 0) copy_into(x, make_view(y, x.shape(), y.strides(), offset));
  if (needs_grad({x}))
    record("pad", {x}, {&y}, [pads, in = x.shape()](const VjpContext& c) -> TensorList {
      Tensor g = c.grad();
      for (size_t d = 0; d < pads.size(); ++d)
        if (pads[d].first != 0 || pads[d].second != 0)
          g = slice(g, static_cast<int64_t>(d), pads[d].first, pads[d].first + in[d]);
      return {g};
    });
  return y;
}

Tensor tril(const Tensor& x, int64_t k) { return triangle(x, k, true); }
Tensor triu(const Tensor& x, int64_t k) { return triangle(x, k, false); }

}  // namespace lnx
