// Elementwise binary ops with numpy broadcasting. Both operands must have the same dtype;
// scalars take the tensor's dtype. Each vjp sums its gradient back to the operand's shape.
#include <cmath>

#include "tensor/cpu/loops.h"
#include "tensor/ops.h"

namespace lnx {

namespace {

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  LNX_CHECK(a.defined() && b.defined(), ValueError, "[{}] got an undefined tensor", op);
  LNX_CHECK(a.dtype() == b.dtype(), DTypeError, "[{}] dtypes differ: a is {} {}, b is {} {} (convert one with to())",
            op, dtype_name(a.dtype()), shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
}

// Runs f over the broadcast of a and b; the result has their dtype.
template <typename F>
Tensor broadcast_map(const Tensor& a, const Tensor& b, const char* op, bool floating_only, F&& f) {
  check_same_dtype(a, b, op);
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), op), a.dtype());
  auto body = [&]<typename T>() { binary_kernel<T, T, T>(a, b, out, [&](T x, T y) { return f(x, y); }); };
  if (floating_only)
    dispatch_float(a.dtype(), op, body);
  else
    dispatch_all(a.dtype(), body);
  return out;
}

Tensor scalar_like(const Tensor& t, double v) { return scalar_tensor(v, t.dtype()); }

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = broadcast_map(a, b, "add", false, [](auto x, auto z) { return x + z; });
  if (needs_grad({a, b}))
    record("add", {a, b}, {&y}, [sa = a.shape(), sb = b.shape()](const VjpContext& c) -> TensorList {
      return {c.needs_grad(0) ? sum_to(c.grad(), sa) : Tensor(), c.needs_grad(1) ? sum_to(c.grad(), sb) : Tensor()};
    });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = broadcast_map(a, b, "sub", false, [](auto x, auto z) { return x - z; });
  if (needs_grad({a, b}))
    record("sub", {a, b}, {&y}, [sa = a.shape(), sb = b.shape()](const VjpContext& c) -> TensorList {
      return {c.needs_grad(0) ? sum_to(c.grad(), sa) : Tensor(),
              c.needs_grad(1) ? sum_to(neg(c.grad()), sb) : Tensor()};
    });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = broadcast_map(a, b, "mul", false, [](auto x, auto z) { return x * z; });
  if (needs_grad({a, b}))
    record("mul", {a, b}, {&y}, [a = a.detach(), b = b.detach()](const VjpContext& c) -> TensorList {
      return {c.needs_grad(0) ? sum_to(mul(c.grad(), b), a.shape()) : Tensor(),
              c.needs_grad(1) ? sum_to(mul(c.grad(), a), b.shape()) : Tensor()};
    });
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  // Floating only: integer division by zero would trap (SIGFPE) instead of raising an error.
  Tensor y = broadcast_map(a, b, "div", true, [](auto x, auto z) { return x / z; });
  if (needs_grad({a, b}))
    record("div", {a, b}, {&y}, [a = a.detach(), b = b.detach()](const VjpContext& c) -> TensorList {
      // d(a/b)/da = 1/b, d(a/b)/db = −a/b²
      return {c.needs_grad(0) ? sum_to(div(c.grad(), b), a.shape()) : Tensor(),
              c.needs_grad(1) ? sum_to(neg(div(mul(c.grad(), a), mul(b, b))), b.shape()) : Tensor()};
    });
  return y;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor y = broadcast_map(a, b, "pow", true, [](auto x, auto z) { return std::pow(x, z); });
  if (needs_grad({a, b}))
    record("pow", {a, b}, {&y}, [a = a.detach(), b = b.detach(), y = y.detach()](const VjpContext& c) -> TensorList {
      // d(aᵇ)/da = b·aᵇ⁻¹, d(aᵇ)/db = aᵇ·log a
      return {c.needs_grad(0) ? sum_to(mul(c.grad(), mul(b, pow(a, sub(b, 1.0)))), a.shape()) : Tensor(),
              c.needs_grad(1) ? sum_to(mul(c.grad(), mul(y, log(a))), b.shape()) : Tensor()};
    });
  return y;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor y = broadcast_map(a, b, "maximum", false, [](auto x, auto z) { return x >= z ? x : z; });
  if (needs_grad({a, b}))
    record("maximum", {a, b}, {&y}, [a = a.detach(), b = b.detach()](const VjpContext& c) -> TensorList {
      Tensor take_a = where(less(a, b), scalar_like(c.grad(), 0), scalar_like(c.grad(), 1));
      return {c.needs_grad(0) ? sum_to(mul(c.grad(), take_a), a.shape()) : Tensor(),
              c.needs_grad(1) ? sum_to(mul(c.grad(), (1.0 - take_a)), b.shape()) : Tensor()};
    });
  return y;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor y = broadcast_map(a, b, "minimum", false, [](auto x, auto z) { return x <= z ? x : z; });
  if (needs_grad({a, b}))
    record("minimum", {a, b}, {&y}, [a = a.detach(), b = b.detach()](const VjpContext& c) -> TensorList {
      Tensor take_a = where(greater(a, b), scalar_like(c.grad(), 0), scalar_like(c.grad(), 1));
      return {c.needs_grad(0) ? sum_to(mul(c.grad(), take_a), a.shape()) : Tensor(),
              c.needs_grad(1) ? sum_to(mul(c.grad(), (1.0 - take_a)), b.shape()) : Tensor()};
    });
  return y;
}

Tensor greater(const Tensor& a, const Tensor& b) {
  return broadcast_map(a, b, "greater", false, [](auto x, auto z) { return decltype(x)(x > z); });
}
Tensor less(const Tensor& a, const Tensor& b) {
  return broadcast_map(a, b, "less", false, [](auto x, auto z) { return decltype(x)(x < z); });
}
Tensor equal(const Tensor& a, const Tensor& b) {
  return broadcast_map(a, b, "equal", false, [](auto x, auto z) { return decltype(x)(x == z); });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_dtype(a, b, "where");
  LNX_CHECK(cond.defined(), ValueError, "[where] condition is undefined");
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  // Broadcast all three to one shape, then pick per element.
  Tensor cb = expand(cond.detach(), shape), ab = expand(a.detach(), shape), bb = expand(b.detach(), shape);
  Tensor y = Tensor::empty(shape, a.dtype());
  dispatch_all(cond.dtype(), [&]<typename TC>() {
    dispatch_all(a.dtype(), [&]<typename T>() {
      const TC* cp = static_cast<const TC*>(cb.raw_data());
      const T* ap = static_cast<const T*>(ab.raw_data());
      const T* bp = static_cast<const T*>(bb.raw_data());
      T* yp = y.data<T>();
      for_each_row<4>(shape, {cb.strides(), ab.strides(), bb.strides(), y.strides()},
                      [&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& st) {
                        for (int64_t i = 0; i < n; ++i)
                          yp[off[3] + i * st[3]] =
                              cp[off[0] + i * st[0]] != TC(0) ? ap[off[1] + i * st[1]] : bp[off[2] + i * st[2]];
                      });
    });
  });
  if (needs_grad({a, b}))
    record("where", {a, b}, {&y},
           [cond = cond.detach(), sa = a.shape(), sb = b.shape()](const VjpContext& c) -> TensorList {
             Tensor zero = zeros({}, c.grad().dtype());
             return {c.needs_grad(0) ? sum_to(where(cond, c.grad(), zero), sa) : Tensor(),
                     c.needs_grad(1) ? sum_to(where(cond, zero, c.grad()), sb) : Tensor()};
           });
  return y;
}

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like(b, a), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like(b, a), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like(b, a), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like(b, a), b); }

}  // namespace lnx
