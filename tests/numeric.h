// Numeric comparison helpers used by every test: relative RMS error (DESIGN.md §8) and max
// absolute error, computed in f64 whatever the inputs' dtypes.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tensor/ops.h"

namespace lnx {

// rms(a − b) / rms(b); 0 when both are all zero.
inline double rel_rms_error(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  auto av = a.to_vector<double>();
  auto bv = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size() && i < bv.size(); ++i) {
    num += (av[i] - bv[i]) * (av[i] - bv[i]);
    den += bv[i] * bv[i];
  }
  if (den == 0) return num == 0 ? 0.0 : INFINITY;
  return std::sqrt(num / den);
}

inline double max_abs_error(const Tensor& a, const Tensor& b) {
  auto av = a.to_vector<double>();
  auto bv = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < av.size() && i < bv.size(); ++i) m = std::max(m, std::abs(av[i] - bv[i]));
  return m;
}

// gtest assertion: EXPECT_TRUE(all_close(a, b, 1e-6)) with a readable failure message.
inline ::testing::AssertionResult all_close(const Tensor& a, const Tensor& b, double rel_rms,
                                            double max_abs = INFINITY) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  double r = rel_rms_error(a, b), m = max_abs_error(a, b);
  if (r <= rel_rms && m <= max_abs) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "relative RMS error " << r << " (limit " << rel_rms << "), max abs error "
                                       << m << " (limit " << max_abs << ")";
}

// The exception's message when f throws E, "<no error>" when it throws nothing (another
// exception type propagates and fails the test).
template <typename E, typename F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace lnx
