// Views and layout: reshape, permute, slice, expand, squeeze, contiguous, dtype casts.
// Views share storage with their input; each vjp maps the gradient back to the input's shape.
#include <algorithm>
#include <numeric>

#include "tensor/cpu/loops.h"
#include "tensor/ops.h"

namespace lnx {

namespace {

// Strides for viewing x (shape/strides) as new_shape without a copy, or nullopt when the
// memory layout does not allow it (numpy's/pytorch's "computeStride" rule).
std::optional<Strides> view_strides(const Shape& shape, const Strides& strides, const Shape& new_shape) {
  if (numel_of(shape) <= 1) return contiguous_strides(new_shape);
  Strides out(new_shape.size());
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

void require_defined(const Tensor& x, const char* op) {
  LNX_CHECK(x.defined(), ValueError, "[{}] got an undefined tensor", op);
}

Shape infer_shape(const Shape& shape, int64_t numel, const char* op, const Shape& input) {
  Shape out = shape;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      LNX_CHECK(infer < 0, ShapeError, "[{}] shape {} has more than one -1", op, shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      LNX_CHECK(out[i] >= 0, ShapeError, "[{}] shape {} has a negative dim", op, shape_str(shape));
      LNX_CHECK(!__builtin_mul_overflow(known, out[i], &known), ShapeError,
                "[{}] shape {} has more elements than fit in 64 bits", op, shape_str(shape));
    }
  }
  if (infer >= 0) {
    LNX_CHECK(known != 0 && numel % known == 0, ShapeError, "[{}] cannot reshape {} ({} elements) into {}", op,
              shape_str(input), numel, shape_str(shape));
    out[infer] = numel / known;
  }
  LNX_CHECK(numel_of(out) == numel, ShapeError, "[{}] cannot reshape {} ({} elements) into {}", op, shape_str(input),
            numel, shape_str(shape));
  return out;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  require_defined(x, "reshape");
  Shape out_shape = infer_shape(shape, x.numel(), "reshape", x.shape());
  Tensor y;
  if (x.is_contiguous()) {
    y = make_view(x, out_shape, contiguous_strides(out_shape), x.offset());
  } else if (auto st = view_strides(x.shape(), x.strides(), out_shape)) {
    y = make_view(x, out_shape, *st, x.offset());
  } else {
    Tensor copy = contiguous(x.detach());
    y = make_view(copy, out_shape, contiguous_strides(out_shape), copy.offset());
  }
  if (needs_grad({x}))
    record("reshape", {x}, {&y},
           [in_shape = x.shape()](const VjpContext& c) -> TensorList { return {reshape(c.grad(), in_shape)}; });
  return y;
}

Tensor flatten(const Tensor& x, int64_t start_axis, int64_t end_axis) {
  require_defined(x, "flatten");
  if (x.dim() == 0) return reshape(x, {1});
  int64_t s = normalize_axis(start_axis, x.dim(), "flatten");
  int64_t e = normalize_axis(end_axis, x.dim(), "flatten");
  LNX_CHECK(s <= e, ShapeError, "[flatten] start axis {} is after end axis {}", start_axis, end_axis);
  Shape out(x.shape().begin(), x.shape().begin() + s);
  int64_t m = 1;
  for (int64_t i = s; i <= e; ++i) m *= x.shape()[i];
  out.push_back(m);
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, out);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& order) {
  require_defined(x, "permute");
  LNX_CHECK(static_cast<int64_t>(order.size()) == x.dim(), ShapeError,
            "[permute] order has {} axes for a tensor of shape {}", order.size(), shape_str(x.shape()));
  std::vector<int64_t> ord(order.size());
  std::vector<bool> used(order.size(), false);
  for (size_t i = 0; i < order.size(); ++i) {
    ord[i] = normalize_axis(order[i], x.dim(), "permute");
    LNX_CHECK(!used[ord[i]], ShapeError, "[permute] order [{}] repeats axis {}", fmt::join(order, ","), ord[i]);
    used[ord[i]] = true;
  }
  Shape shape(ord.size());
  Strides strides(ord.size());
  for (size_t i = 0; i < ord.size(); ++i) {
    shape[i] = x.shape()[ord[i]];
    strides[i] = x.strides()[ord[i]];
  }
  Tensor y = make_view(x, shape, strides, x.offset());
  if (needs_grad({x})) {
    std::vector<int64_t> inverse(ord.size());
    for (size_t i = 0; i < ord.size(); ++i) inverse[ord[i]] = static_cast<int64_t>(i);
    record("permute", {x}, {&y}, [inverse](const VjpContext& c) -> TensorList { return {permute(c.grad(), inverse)}; });
  }
  return y;
}

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  require_defined(x, "transpose");
  std::vector<int64_t> order(x.dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(a, x.dim(), "transpose")], order[normalize_axis(b, x.dim(), "transpose")]);
  return permute(x, order);
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t stop, int64_t step) {
  require_defined(x, "slice");
  int64_t ax = normalize_axis(axis, x.dim(), "slice");
  LNX_CHECK(step >= 1, ValueError, "[slice] step must be >= 1, got {}", step);
  const int64_t n = x.shape()[ax];
  auto clampi = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  int64_t s = clampi(start), e = clampi(stop);
  int64_t len = e > s ? (e - s + step - 1) / step : 0;
  Shape shape = x.shape();
  Strides strides = x.strides();
  shape[ax] = len;
  strides[ax] *= step;
  Tensor y = make_view(x, shape, strides, x.offset() + s * x.strides()[ax]);
  if (needs_grad({x}))
    record("slice", {x}, {&y}, [in = x.shape(), ax, s, step](const VjpContext& c) -> TensorList {
      // Scatter the gradient into zeros of the input's shape.
      Tensor g = zeros(in, c.grad().dtype());
      Tensor view = make_view(
          g, c.grad().shape(),
          [&] {
            Strides st = g.strides();
            st[ax] *= step;
            return st;
          }(),
          s * g.strides()[ax]);
      copy_into(c.grad(), view);
      return {g};
    });
  return y;
}

Tensor select(const Tensor& x, int64_t axis, int64_t index) {
  require_defined(x, "select");
  int64_t ax = normalize_axis(axis, x.dim(), "select");
  const int64_t n = x.shape()[ax];
  LNX_CHECK(index >= -n && index < n, ShapeError, "[select] index {} is out of range for axis {} of size {}", index,
            axis, n);
  int64_t i = index < 0 ? index + n : index;
  return squeeze(slice(x, ax, i, i + 1), ax);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  require_defined(x, "expand");
  LNX_CHECK(shape.size() >= x.shape().size(), ShapeError, "[expand] cannot expand {} to fewer dims {}",
            shape_str(x.shape()), shape_str(shape));
  Strides st(shape.size(), 0);
  const size_t off = shape.size() - x.shape().size();
  for (size_t i = 0; i < shape.size(); ++i) {
    LNX_CHECK(shape[i] >= 0, ShapeError, "[expand] target shape {} has a negative dim", shape_str(shape));
    if (i < off) continue;
    int64_t d = x.shape()[i - off];
    LNX_CHECK(d == shape[i] || d == 1, ShapeError, "[expand] cannot expand {} to {} (dim {})", shape_str(x.shape()),
              shape_str(shape), i);
    st[i] = d == 1 ? 0 : x.strides()[i - off];
  }
  Tensor y = make_view(x, shape, st, x.offset());
  if (needs_grad({x}))
    record("expand", {x}, {&y}, [in = x.shape()](const VjpContext& c) -> TensorList { return {sum_to(c.grad(), in)}; });
  return y;
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) { return expand(x, shape); }

Tensor squeeze(const Tensor& x, int64_t axis) {
  require_defined(x, "squeeze");
  int64_t ax = normalize_axis(axis, x.dim(), "squeeze");
  LNX_CHECK(x.shape()[ax] == 1, ShapeError, "[squeeze] axis {} of {} has size {}, expected 1", axis,
            shape_str(x.shape()), x.shape()[ax]);
  Shape shape = x.shape();
  shape.erase(shape.begin() + ax);
  return reshape(x, shape);
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  require_defined(x, "unsqueeze");
  int64_t ax = normalize_axis(axis, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + ax, 1);
  return reshape(x, shape);
}

Tensor clone(const Tensor& x) {
  require_defined(x, "clone");
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  copy_into(x, y);
  if (needs_grad({x})) record("clone", {x}, {&y}, [](const VjpContext& c) -> TensorList { return {c.grad()}; });
  return y;
}

Tensor contiguous(const Tensor& x) {
  require_defined(x, "contiguous");
  if (!x.is_contiguous()) return clone(x);
  Tensor y = make_view(x, x.shape(), contiguous_strides(x.shape()), x.offset());
  if (needs_grad({x})) record("contiguous", {x}, {&y}, [](const VjpContext& c) -> TensorList { return {c.grad()}; });
  return y;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  require_defined(x, "to_dtype");
  if (x.dtype() == dtype) return contiguous(x);
  Tensor y = Tensor::empty(x.shape(), dtype);
  copy_into(x, y);
  if (is_floating(dtype) && needs_grad({x}))
    record("to_dtype", {x}, {&y},
           [from = x.dtype()](const VjpContext& c) -> TensorList { return {to_dtype(c.grad(), from)}; });
  return y;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  require_defined(x, "sum_to");
  if (x.shape() == shape) return x;
  LNX_CHECK(x.shape().size() >= shape.size(), ShapeError, "[sum_to] cannot sum {} to {}", shape_str(x.shape()),
            shape_str(shape));
  const size_t lead = x.shape().size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (i < lead) {
      axes.push_back(static_cast<int64_t>(i));
      continue;
    }
    int64_t want = shape[i - lead];
    LNX_CHECK(want == x.shape()[i] || want == 1, ShapeError, "[sum_to] cannot sum {} to {}", shape_str(x.shape()),
              shape_str(shape));
    if (want == 1 && x.shape()[i] != 1) axes.push_back(static_cast<int64_t>(i));
  }
  Tensor s = axes.empty() ? x : sum(x, axes, true);
  return reshape(s, shape);
}

}  // namespace lnx
