// Shapes and strides (strides in elements, not bytes) and the helpers every op uses to
// validate axes and broadcast.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace lnx {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

int64_t numel_of(const Shape& shape);
Strides contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2,3,4]"

// Normalises a possibly negative axis against ndim; throws ShapeError naming op otherwise.
int64_t normalize_axis(int64_t axis, int64_t ndim, std::string_view op);
// Normalises and sorts a list of axes; empty list means "all axes". Rejects duplicates.
std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t ndim, std::string_view op);

// Numpy broadcasting of two shapes; throws ShapeError naming op when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);

}  // namespace lnx
