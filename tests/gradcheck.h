// Table-driven gradient checking. A GradCase names an op, how to make its f64 inputs and the
// function to differentiate; check_gradients compares the autodiff gradient of
// L = Σ w ⊙ fn(inputs) (w a fixed random upstream gradient) with central finite differences
// of L, for every element of every floating input.
//
// Use: write a table of cases in a test file and instantiate the shared parameterised test:
//   INSTANTIATE_TEST_SUITE_P(Unary, GradCheck, ::testing::ValuesIn(unary_cases()), case_name);
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tensor/ops.h"

namespace lnx {

struct GradCase {
  std::string name;  // unique, [A-Za-z0-9_] only (it names the test)
  // Inputs: either shapes of standard-normal f64 inputs, or a maker for special inputs
  // (positive values, integer indices, …). Integer inputs are passed but not differentiated.
  std::vector<Shape> shapes;
  std::function<Tensor(const TensorList& inputs)> fn;
  std::function<TensorList(Generator& gen)> make_inputs = nullptr;
  double eps = 1e-6;   // finite-difference step
  double rtol = 1e-6;  // |analytic − numeric| ≤ atol + rtol·|numeric|
  double atol = 1e-8;
};

// Compares analytic and numeric gradients; the failure message names the input and element.
::testing::AssertionResult check_gradients(const GradCase& c, uint64_t seed = 1234);

class GradCheck : public ::testing::TestWithParam<GradCase> {};

inline std::string case_name(const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; }

}  // namespace lnx
