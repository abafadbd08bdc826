// Elementwise unary ops. Each forward is one scalar function run by unary_kernel; each vjp
// is written with ops, from the input or (where cheaper) the saved output.
#include <cmath>

#include "tensor/cpu/loops.h"
#include "tensor/cpu/vec_math.h"
#include "tensor/ops.h"

namespace lnx {

namespace {

template <typename F> Tensor map_float(const Tensor& x, const char* op, F&& f) {
  LNX_CHECK(x.defined(), ValueError, "[{}] got an undefined tensor", op);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&]<typename T>() { unary_kernel<T, T>(x, y, [&](T v) -> T { return f(v); }); });
  return y;
}

template <typename F> Tensor map_all(const Tensor& x, const char* op, F&& f) {
  LNX_CHECK(x.defined(), ValueError, "[{}] got an undefined tensor", op);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_all(x.dtype(), [&]<typename T>() { unary_kernel<T, T>(x, y, [&](T v) -> T { return f(v); }); });
  return y;
}

// softplus(v) = log(1 + eᵛ) without overflow: max(v, 0) + log1p(e^{−|v|}).
template <typename T> T softplus_scalar(T v) { return std::max(v, T(0)) + std::log1p(std::exp(-std::abs(v))); }
// 1/(1 + e^{−v}): for very negative v, e^{−v} = inf and the result is exactly 0, so no
// branch is needed (and the loop vectorises).
template <typename T> T sigmoid_scalar(T v) { return T(1) / (T(1) + fast_exp(-v)); }

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;

}  // namespace

Tensor neg(const Tensor& x) {
  Tensor y = map_all(x, "neg", [](auto v) { return -v; });
  if (needs_grad({x})) record("neg", {x}, {&y}, [](const VjpContext& c) -> TensorList { return {neg(c.grad())}; });
  return y;
}

Tensor exp(const Tensor& x) {
  Tensor y = map_float(x, "exp", [](auto v) { return fast_exp(v); });
  if (needs_grad({x}))
    record("exp", {x}, {&y}, [y = y.detach()](const VjpContext& c) -> TensorList { return {mul(c.grad(), y)}; });
  return y;
}

Tensor log(const Tensor& x) {
  Tensor y = map_float(x, "log", [](auto v) { return std::log(v); });
  if (needs_grad({x}))
    record("log", {x}, {&y}, [x = x.detach()](const VjpContext& c) -> TensorList { return {div(c.grad(), x)}; });
  return y;
}

Tensor log1p(const Tensor& x) {
  Tensor y = map_float(x, "log1p", [](auto v) { return std::log1p(v); });
  if (needs_grad({x}))
    record("log1p", {x}, {&y},
           [x = x.detach()](const VjpContext& c) -> TensorList { return {div(c.grad(), add(x, 1.0))}; });
  return y;
}

Tensor sqrt(const Tensor& x) {
  Tensor y = map_float(x, "sqrt", [](auto v) { return std::sqrt(v); });
  if (needs_grad({x}))
    record("sqrt", {x}, {&y},
           [y = y.detach()](const VjpContext& c) -> TensorList { return {div(mul(c.grad(), 0.5), y)}; });
  return y;
}

Tensor rsqrt(const Tensor& x) {
  Tensor y = map_float(x, "rsqrt", [](auto v) { return decltype(v)(1) / std::sqrt(v); });
  if (needs_grad({x}))
    record("rsqrt", {x}, {&y}, [y = y.detach()](const VjpContext& c) -> TensorList {
      // d(x^{-1/2})/dx = −½ y³
      return {mul(c.grad(), mul(mul(y, mul(y, y)), -0.5))};
    });
  return y;
}

Tensor abs(const Tensor& x) {
  Tensor y = map_all(x, "abs", [](auto v) { return v < 0 ? -v : v; });
  if (needs_grad({x}))
    record("abs", {x}, {&y}, [x = x.detach()](const VjpContext& c) -> TensorList {
      Tensor sign = map_float(x, "abs", [](auto v) { return decltype(v)((v > 0) - (v < 0)); });
      return {mul(c.grad(), sign)};
    });
  return y;
}

Tensor tanh(const Tensor& x) {
  Tensor y = map_float(x, "tanh", [](auto v) { return std::tanh(v); });
  if (needs_grad({x}))
    record("tanh", {x}, {&y},
           [y = y.detach()](const VjpContext& c) -> TensorList { return {mul(c.grad(), 1.0 - mul(y, y))}; });
  return y;
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = map_float(x, "sigmoid", [](auto v) { return sigmoid_scalar(v); });
  if (needs_grad({x}))
    record("sigmoid", {x}, {&y},
           [y = y.detach()](const VjpContext& c) -> TensorList { return {mul(c.grad(), mul(y, 1.0 - y))}; });
  return y;
}

Tensor silu(const Tensor& x) {
  Tensor y = map_float(x, "silu", [](auto v) { return v / (decltype(v)(1) + fast_exp(-v)); });
  if (needs_grad({x}))
    record("silu", {x}, {&y}, [x = x.detach()](const VjpContext& c) -> TensorList {
      // d(xσ(x))/dx = σ(x)(1 + x(1 − σ(x)))
      Tensor d = map_float(x, "silu", [](auto v) {
        auto s = sigmoid_scalar(v);
        return s * (decltype(v)(1) + v * (decltype(v)(1) - s));
      });
      return {mul(c.grad(), d)};
    });
  return y;
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  LNX_CHECK(gate.defined() && up.defined(), ValueError, "[swiglu] got an undefined tensor");
  LNX_CHECK(gate.dtype() == up.dtype(), DTypeError, "[swiglu] gate is {} but up is {}: they must match",
            dtype_name(gate.dtype()), dtype_name(up.dtype()));
  LNX_CHECK(gate.shape() == up.shape(), ShapeError, "[swiglu] gate is {} but up is {}: they must match",
            shape_str(gate.shape()), shape_str(up.shape()));
  // Views (a split of a fused projection) are copied first: the copy and the fused pass move as
  // much memory as silu and mul did on the view.
  const Tensor g = gate.detach().contiguous(), u = up.detach().contiguous();
  Tensor y = Tensor::empty(g.shape(), g.dtype());
  dispatch_float(g.dtype(), "swiglu", [&]<typename T>() {
    const T *gp = g.data<T>(), *upp = u.data<T>();
    T* yp = y.data<T>();
    parallel_for(g.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) yp[i] = gp[i] / (T(1) + fast_exp(-gp[i])) * upp[i];
    });
  });
  if (needs_grad({gate, up}))
    record("swiglu", {gate, up}, {&y}, [g, u](const VjpContext& c) -> TensorList {
      // d/dgate = dy · up · σ(g)(1 + g(1 − σ(g))), d/dup = dy · silu(g): one pass for both.
      const Tensor dy = c.grad().contiguous();
      Tensor dg = Tensor::empty(g.shape(), g.dtype()), du = Tensor::empty(g.shape(), g.dtype());
      dispatch_float(g.dtype(), "swiglu", [&]<typename T>() {
        const T *gp = g.data<T>(), *upp = u.data<T>(), *dyp = dy.data<T>();
        T *dgp = dg.data<T>(), *dup = du.data<T>();
        parallel_for(g.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            const T v = gp[i], s = sigmoid_scalar(v);
            dup[i] = dyp[i] * (v / (T(1) + fast_exp(-v)));
            dgp[i] = dyp[i] * upp[i] * (s * (T(1) + v * (T(1) - s)));
          }
        });
      });
      return {c.needs_grad(0) ? dg : Tensor(), c.needs_grad(1) ? du : Tensor()};
    });
  return y;
}

Tensor softplus(const Tensor& x) {
  Tensor y = map_float(x, "softplus", [](auto v) { return softplus_scalar(v); });
  if (needs_grad({x}))
    record("softplus", {x}, {&y},
           [x = x.detach()](const VjpContext& c) -> TensorList { return {mul(c.grad(), sigmoid(x))}; });
  return y;
}

Tensor logsigmoid(const Tensor& x) {
  Tensor y = map_float(x, "logsigmoid", [](auto v) { return -softplus_scalar(-v); });
  if (needs_grad({x}))
    record("logsigmoid", {x}, {&y},
           [x = x.detach()](const VjpContext& c) -> TensorList { return {mul(c.grad(), sigmoid(neg(x)))}; });
  return y;
}

Tensor gelu(const Tensor& x) {
  Tensor y = map_float(x, "gelu", [](auto v) {
    using T = decltype(v);
    return T(0.5) * v * (T(1) + std::tanh(T(kSqrt2OverPi) * (v + T(kGeluCubic) * v * v * v)));
  });
  if (needs_grad({x}))
    record("gelu", {x}, {&y}, [x = x.detach()](const VjpContext& c) -> TensorList {
      Tensor d = map_float(x, "gelu", [](auto v) {
        using T = decltype(v);
        T u = T(kSqrt2OverPi) * (v + T(kGeluCubic) * v * v * v);
        T t = std::tanh(u);
        T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * v * v);
        return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * du;
      });
      return {mul(c.grad(), d)};
    });
  return y;
}

Tensor gelu_erf(const Tensor& x) {
  Tensor y = map_float(x, "gelu_erf", [](auto v) {
    using T = decltype(v);
    return T(0.5) * v * (T(1) + std::erf(v * T(M_SQRT1_2)));
  });
  if (needs_grad({x}))
    record("gelu_erf", {x}, {&y}, [x = x.detach()](const VjpContext& c) -> TensorList {
      Tensor d = map_float(x, "gelu_erf", [](auto v) {
        using T = decltype(v);
        // Φ(x) + x·φ(x)
        return T(0.5) * (T(1) + std::erf(v * T(M_SQRT1_2))) + v * std::exp(T(-0.5) * v * v) * T(0.3989422804014327);
      });
      return {mul(c.grad(), d)};
    });
  return y;
}

Tensor relu(const Tensor& x) {
  Tensor y = map_all(x, "relu", [](auto v) { return v > 0 ? v : decltype(v)(0); });
  if (needs_grad({x}))
    record("relu", {x}, {&y}, [x = x.detach()](const VjpContext& c) -> TensorList {
      return {mul(c.grad(), greater(x, zeros({}, x.dtype())))};
    });
  return y;
}

Tensor elu(const Tensor& x, double alpha) {
  Tensor y = map_float(x, "elu", [alpha](auto v) {
    using T = decltype(v);
    return v > 0 ? v : T(alpha) * std::expm1(v);
  });
  if (needs_grad({x}))
    record("elu", {x}, {&y}, [x = x.detach(), alpha](const VjpContext& c) -> TensorList {
      Tensor d = map_float(x, "elu", [alpha](auto v) {
        using T = decltype(v);
        return v > 0 ? T(1) : T(alpha) * std::exp(v);
      });
      return {mul(c.grad(), d)};
    });
  return y;
}

Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
  LNX_CHECK(!lo || !hi || *lo <= *hi, ValueError, "[clamp] lower bound {} is above upper bound {}", *lo, *hi);
  const double l = lo.value_or(-INFINITY), h = hi.value_or(INFINITY);
  Tensor y = map_all(x, "clamp", [l, h](auto v) {
    using T = decltype(v);
    double d = static_cast<double>(v);
    return d < l ? T(l) : (d > h ? T(h) : v);
  });
  if (needs_grad({x}))
    record("clamp", {x}, {&y}, [x = x.detach(), l, h](const VjpContext& c) -> TensorList {
      // Gradient passes where the input is inside [lo, hi].
      Tensor inside = map_float(x, "clamp", [l, h](auto v) {
        double d = static_cast<double>(v);
        return decltype(v)(d >= l && d <= h);
      });
      return {mul(c.grad(), inside)};
    });
  return y;
}

Tensor pow(const Tensor& x, double exponent) {
  Tensor y = map_float(x, "pow", [exponent](auto v) { return std::pow(v, decltype(v)(exponent)); });
  if (needs_grad({x}))
    record("pow", {x}, {&y}, [x = x.detach(), exponent](const VjpContext& c) -> TensorList {
      return {mul(c.grad(), mul(pow(x, exponent - 1.0), exponent))};
    });
  return y;
}

Tensor square(const Tensor& x) { return mul(x, x); }

}  // namespace lnx
