// Helpers for the optimizer tests: leaves built from literal values, gradients set by hand,
// values read back as doubles, and seeded random parameter sets.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "numeric.h"
#include "tensor/ops.h"
#include "tensor/tensor_dict.h"
#include "train/optim.h"

namespace lnx::train::testing {

inline Tensor tensor_of(const std::vector<double>& values, const Shape& shape, DType dtype) {
  Tensor t = zeros(shape, dtype);
  dispatch_float(dtype, "test", [&]<typename T>() {
    T* d = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) d[i] = static_cast<T>(values[i]);
  });
  return t;
}

// An autodiff leaf holding `values` (row-major).
inline Tensor leaf(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f64) {
  Tensor t = tensor_of(values, shape, dtype);
  t.set_requires_grad();
  return t;
}

inline void give_grad(const Tensor& p, const std::vector<double>& g) { p.set_grad(tensor_of(g, p.shape(), p.dtype())); }

inline std::vector<double> values(const Tensor& t) { return t.contiguous().to_vector<double>(); }

inline void expect_values(const Tensor& t, const std::vector<double>& expected, double tol, const std::string& what) {
  const std::vector<double> got = values(t);
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << what << " element " << i;
}

// A small model-like parameter set: hidden matrices, an embedding, a head, gains.
inline TensorDict random_params(uint64_t seed, DType dtype) {
  Generator gen(seed);
  TensorDict p;
  auto add = [&](const std::string& name, const Shape& shape) {
    Tensor t = randn(shape, gen, dtype);
    t.set_requires_grad();
    p.insert(name, t);
  };
  add("embeddings.weight", {6, 4});
  add("blocks.0.mixer.q_proj.weight", {4, 4});
  add("blocks.0.mixer.o_proj.weight", {4, 8});
  add("blocks.0.mlp.w1.weight", {8, 4});
  add("blocks.0.norm.weight", {4});
  add("blocks.0.mixer.A_log", {4, 2});
  add("blocks.0.mixer.dt_bias", {4});
  add("lm_head.weight", {6, 4});
  return p;
}

// Fresh seeded gradients for every parameter.
inline void random_grads(const TensorDict& params, Generator& gen) {
  for (const auto& [name, p] : params) p.set_grad(randn(p.shape(), gen, p.dtype()));
}

// Independent leaves holding copies of params' current values.
inline TensorDict copy_params(const TensorDict& params) {
  TensorDict out;
  for (const auto& [name, p] : params) {
    Tensor c = clone(p.detach());
    c.set_requires_grad();
    out.insert(name, c);
  }
  return out;
}

inline OptimizerConfig config_named(const std::string& name) {
  OptimizerConfig c;
  c.name = name;
  return c;
}

}  // namespace lnx::train::testing
