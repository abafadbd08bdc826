#include "tensor/shape.h"

#include <algorithm>

#include "tensor/error.h"

namespace lnx {

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape)
    LNX_CHECK(!__builtin_mul_overflow(n, s, &n), ShapeError, "[shape] {} has more elements than fit in 64 bits",
              shape_str(shape));
  return n;
}

Strides contiguous_strides(const Shape& shape) {
  Strides st(shape.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    LNX_CHECK(!__builtin_mul_overflow(acc, std::max<int64_t>(shape[i], 1), &acc), ShapeError,
              "[shape] {} has more elements than fit in 64 bits", shape_str(shape));
  }
  return st;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ",")); }

int64_t normalize_axis(int64_t axis, int64_t ndim, std::string_view op) {
  LNX_CHECK(axis >= -ndim && axis < ndim, ShapeError, "[{}] axis {} is out of range for a tensor with {} dims", op,
            axis, ndim);
  return axis < 0 ? axis + ndim : axis;
}

std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t ndim, std::string_view op) {
  std::vector<int64_t> out;
  if (axes.empty()) {
    for (int64_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t a : axes) out.push_back(normalize_axis(a, ndim, op));
  std::sort(out.begin(), out.end());
  LNX_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), ShapeError, "[{}] axes [{}] contain a duplicate",
            op, fmt::join(axes, ","));
  return out;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    LNX_CHECK(da == db || da == 1 || db == 1, ShapeError, "[{}] shapes {} and {} do not broadcast (dim {}: {} vs {})",
              op, shape_str(a), shape_str(b), i, da, db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace lnx
