// Finite-difference gradient table: elementwise unary and binary ops (broadcasting included).
#include "gradcheck.h"

namespace lnx {
namespace {

// Positive inputs in [lo, hi) for ops defined on x > 0.
std::function<TensorList(Generator&)> positive(std::vector<Shape> shapes, double lo = 0.5, double hi = 2.0) {
  return [shapes, lo, hi](Generator& g) {
    TensorList xs;
    for (const auto& s : shapes) xs.push_back(uniform(s, lo, hi, g, DType::f64));
    return xs;
  };
}

// Inputs kept away from a kink at 0 (|x| ≥ 0.1) so finite differences do not straddle it.
std::function<TensorList(Generator&)> away_from_zero(std::vector<Shape> shapes) {
  return [shapes](Generator& g) {
    TensorList xs;
    for (const auto& s : shapes) {
      Tensor u = uniform(s, 0.1, 2.0, g, DType::f64);
      Tensor sign = sub(mul(greater(uniform(s, 0, 1, g, DType::f64), full({}, 0.5, DType::f64)), 2.0), 1.0);
      xs.push_back(mul(u, sign));
    }
    return xs;
  };
}

std::vector<GradCase> unary_cases() {
  const Shape s{3, 5};
  return {
      {"neg", {s}, [](const TensorList& x) { return neg(x[0]); }},
      {"exp", {s}, [](const TensorList& x) { return exp(x[0]); }},
      {"log", {}, [](const TensorList& x) { return log(x[0]); }, positive({s})},
      {"log1p", {}, [](const TensorList& x) { return log1p(x[0]); }, positive({s}, -0.5, 2.0)},
      {"sqrt", {}, [](const TensorList& x) { return sqrt(x[0]); }, positive({s})},
      {"rsqrt", {}, [](const TensorList& x) { return rsqrt(x[0]); }, positive({s})},
      {"abs", {}, [](const TensorList& x) { return abs(x[0]); }, away_from_zero({s})},
      {"pow_scalar", {}, [](const TensorList& x) { return pow(x[0], 2.5); }, positive({s})},
      {"square", {s}, [](const TensorList& x) { return square(x[0]); }},
      {"tanh", {s}, [](const TensorList& x) { return tanh(x[0]); }},
      {"sigmoid", {s}, [](const TensorList& x) { return sigmoid(mul(x[0], 3.0)); }},
      {"silu", {s}, [](const TensorList& x) { return silu(mul(x[0], 3.0)); }},
      {"softplus", {s}, [](const TensorList& x) { return softplus(mul(x[0], 5.0)); }},
      {"logsigmoid", {s}, [](const TensorList& x) { return logsigmoid(mul(x[0], 5.0)); }},
      {"gelu", {s}, [](const TensorList& x) { return gelu(mul(x[0], 2.0)); }},
      {"gelu_erf", {s}, [](const TensorList& x) { return gelu_erf(mul(x[0], 2.0)); }},
      {"relu", {}, [](const TensorList& x) { return relu(x[0]); }, away_from_zero({s})},
      {"elu", {}, [](const TensorList& x) { return elu(x[0], 0.7); }, away_from_zero({s})},
      {"clamp",
       {},
       [](const TensorList& x) { return clamp(x[0], -0.5, 0.8); },
       [](Generator& g) {
         // Values on both sides of both bounds, none within 0.05 of a bound.
         Tensor x = from_list({-1.5, -0.7, -0.3, 0.0, 0.4, 0.7, 0.9, 1.6, -0.45, 0.75}, {2, 5}, DType::f64);
         return TensorList{add(x, mul(uniform({2, 5}, -0.02, 0.02, g, DType::f64), 1.0))};
       }},
      {"unary_on_transposed_view", {{5, 3}}, [](const TensorList& x) { return exp(transpose(x[0], 0, 1)); }},
  };
}

std::vector<GradCase> binary_cases() {
  return {
      {"add", {{3, 4}, {3, 4}}, [](const TensorList& x) { return add(x[0], x[1]); }},
      {"add_broadcast_row", {{3, 4}, {4}}, [](const TensorList& x) { return add(x[0], x[1]); }},
      {"add_broadcast_both", {{3, 1}, {1, 4}}, [](const TensorList& x) { return add(x[0], x[1]); }},
      {"sub_broadcast", {{2, 3, 4}, {3, 1}}, [](const TensorList& x) { return sub(x[0], x[1]); }},
      {"mul", {{3, 4}, {3, 4}}, [](const TensorList& x) { return mul(x[0], x[1]); }},
      {"swiglu", {{3, 4}, {3, 4}}, [](const TensorList& x) { return swiglu(mul(x[0], 3.0), x[1]); }},
      {"swiglu_transposed_views",
       {{4, 3}, {4, 3}},
       [](const TensorList& x) { return swiglu(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); }},
      {"mul_broadcast_scalar", {{3, 4}, {}}, [](const TensorList& x) { return mul(x[0], x[1]); }},
      {"div", {}, [](const TensorList& x) { return div(x[0], x[1]); }, positive({{3, 4}, {3, 4}})},
      {"div_broadcast", {}, [](const TensorList& x) { return div(x[0], x[1]); }, positive({{2, 3, 4}, {4}})},
      {"pow_tensor", {}, [](const TensorList& x) { return pow(x[0], x[1]); }, positive({{3, 4}, {3, 4}})},
      {"maximum", {}, [](const TensorList& x) { return maximum(x[0], x[1]); }, away_from_zero({{3, 4}, {3, 4}})},
      {"minimum_broadcast", {}, [](const TensorList& x) { return minimum(x[0], x[1]); }, away_from_zero({{3, 4}, {4}})},
      {"where",
       {{3, 4}, {3, 4}, {3, 4}},
       [](const TensorList& x) { return where(greater(x[0], zeros({}, DType::f64)), x[1], x[2]); }},
      {"where_broadcast",
       {{3, 4}, {4}, {3, 1}},
       [](const TensorList& x) { return where(greater(x[0], zeros({}, DType::f64)), x[1], x[2]); }},
      {"scalar_ops", {{3, 4}}, [](const TensorList& x) { return (2.0 - x[0]) * 3.0 / (x[0] * x[0] + 1.0) + 1.5; }},
      {"reuse_accumulates", {{3, 4}}, [](const TensorList& x) { return mul(add(x[0], x[0]), exp(x[0])); }},
  };
}

INSTANTIATE_TEST_SUITE_P(Unary, GradCheck, ::testing::ValuesIn(unary_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Binary, GradCheck, ::testing::ValuesIn(binary_cases()), case_name);

}  // namespace
}  // namespace lnx
