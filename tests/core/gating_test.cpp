// Gate transforms and initialisations (core/gating.h): their values against the formulas,
// their ranges (log decays ≤ 0, softplus(dt_bias_init) within [dt_min, dt_max]) and gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "core/gating.h"
#include "gradcheck.h"
#include "numeric.h"

namespace lnx::core {
namespace {

double softplus_d(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }

TEST(Gating, DtBiasInitGivesDtWithinRange) {
  struct Range {
    double lo, hi;
  };
  for (Range r : {Range{0.001, 0.1}, Range{0.01, 0.5}, Range{1e-3, 1e-3 * 1.0001}}) {
    SCOPED_TRACE(fmt::format("dt in [{}, {}]", r.lo, r.hi));
    Generator gen(3);
    const std::vector<double> b = dt_bias_init(2000, gen, r.lo, r.hi, 1e-4, DType::f64).to_vector<double>();
    double smallest = INFINITY, largest = 0;
    for (double v : b) {
      const double dt = softplus_d(v);
      smallest = std::min(smallest, dt);
      largest = std::max(largest, dt);
    }
    EXPECT_GE(smallest, r.lo * (1 - 1e-9));
    EXPECT_LE(largest, r.hi * (1 + 1e-9));
    if (r.hi / r.lo > 2) {  // log-uniform: the draws spread over the range
      EXPECT_LT(smallest, r.lo * 1.1);
      EXPECT_GT(largest, r.hi * 0.9);
    }
  }
  // The floor wins over a smaller dt_min; f32 output stays within float rounding of the range.
  Generator gen(4);
  for (double v : dt_bias_init(500, gen, 1e-6, 1e-5, 1e-4, DType::f64).to_vector<double>())
    EXPECT_NEAR(softplus_d(v), 1e-4, 1e-12);
  const Tensor f = dt_bias_init(500, gen);
  EXPECT_EQ(f.dtype(), DType::f32);
  for (double v : f.to_vector<double>()) {
    EXPECT_GE(softplus_d(v), 0.001 * (1 - 1e-4));
    EXPECT_LE(softplus_d(v), 0.1 * (1 + 1e-4));
  }
}

TEST(Gating, ALogInitWithinRange) {
  Generator gen(5);
  for (double v : A_log_init(1000, gen, 1, 16, DType::f64).to_vector<double>()) {
    EXPECT_GE(std::exp(v), 1.0 - 1e-12);
    EXPECT_LE(std::exp(v), 16.0 + 1e-12);
  }
}

TEST(Gating, SoftplusDecayIsNonPositiveAndMatchesFormula) {
  Generator gen(6);
  // Large |a| too: softplus must stay finite and the decay ≤ 0 (−0 allowed where it underflows).
  const Tensor a = mul(randn({3, 7, 4}, gen, DType::f64), 10.0);
  const Tensor A_log = randn({4}, gen, DType::f64);
  const Tensor dt_bias = randn({4}, gen, DType::f64);
  const std::vector<double> av = a.to_vector<double>(), alv = A_log.to_vector<double>(),
                            bv = dt_bias.to_vector<double>();
  for (bool with_bias : {true, false}) {
    const std::vector<double> g = softplus_decay(a, A_log, with_bias ? dt_bias : Tensor()).to_vector<double>();
    for (size_t i = 0; i < g.size(); ++i) {
      const size_t h = i % 4;
      const double want = -std::exp(alv[h]) * softplus_d(av[i] + (with_bias ? bv[h] : 0.0));
      EXPECT_LE(g[i], 0.0);
      EXPECT_NEAR(g[i], want, 1e-12 * (1 + std::abs(want)));
    }
  }
  // f32 too.
  const std::vector<float> g32 =
      softplus_decay(to_dtype(a, DType::f32), to_dtype(A_log, DType::f32), to_dtype(dt_bias, DType::f32))
          .to_vector<float>();
  for (float v : g32) EXPECT_LE(v, 0.0f);
}

TEST(Gating, LogsigmoidGate) {
  Generator gen(7);
  const Tensor x = mul(randn({5, 8}, gen, DType::f64), 5.0);
  const std::vector<double> xv = x.to_vector<double>();
  for (double n : {0.1, 1.0, 16.0}) {
    const std::vector<double> g = logsigmoid_gate(x, n).to_vector<double>();
    for (size_t i = 0; i < g.size(); ++i) {
      EXPECT_LE(g[i], 0.0);
      EXPECT_NEAR(g[i], -softplus_d(-xv[i]) / n, 1e-12);
    }
  }
}

TEST(Gating, Gradients) {
  const std::vector<GradCase> cases{
      {"softplus_decay", {{2, 3, 4}, {4}, {4}}, [](const TensorList& x) { return softplus_decay(x[0], x[1], x[2]); }},
      {"softplus_decay_no_bias",
       {{5, 3}, {3}},
       [](const TensorList& x) { return softplus_decay(x[0], x[1], Tensor()); }},
      {"logsigmoid_gate", {{4, 6}}, [](const TensorList& x) { return logsigmoid_gate(x[0], 16.0); }},
  };
  for (const GradCase& c : cases) EXPECT_TRUE(check_gradients(c));
}

}  // namespace
}  // namespace lnx::core
