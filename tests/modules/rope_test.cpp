// apply_rope (one fused op with its own vjp) against the rotation written out per element, and
// its gradient against finite differences, for shared positions (a training batch) and for
// positions spread wider than the tokens (one table row per token).
#include <gtest/gtest.h>

#include <cmath>

#include "gradcheck.h"
#include "modules/rope.h"
#include "numeric.h"

namespace lnx::modules {
namespace {

// positions [B, T]: row b starts at starts[b].
Tensor positions(const std::vector<int64_t>& starts, int64_t T) {
  std::vector<int64_t> p;
  for (int64_t s : starts)
    for (int64_t t = 0; t < T; ++t) p.push_back(s + t);
  return from_vector(p, {static_cast<int64_t>(starts.size()), T});
}

Tensor rope_by_hand(const Tensor& x, const Tensor& pos, double theta) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  const std::vector<double> xv = to_dtype(x, DType::f64).to_vector<double>();
  const std::vector<int64_t> pv = pos.to_vector<int64_t>();
  std::vector<double> y(xv.size());
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const double a = static_cast<double>(pv[static_cast<size_t>(r)]) * std::pow(theta, -2.0 * i / D);
        const size_t o = static_cast<size_t>((r * H + h) * D + i), o2 = o + static_cast<size_t>(half);
        y[o] = xv[o] * std::cos(a) - xv[o2] * std::sin(a);
        y[o2] = xv[o2] * std::cos(a) + xv[o] * std::sin(a);
      }
  return from_vector(y, x.shape());
}

TEST(Rope, MatchesTheRotationPerElement) {
  Generator gen(3);
  for (const std::vector<int64_t>& starts : std::vector<std::vector<int64_t>>{{0, 0, 0}, {0, 5, 1000}, {70000}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      const Tensor x = to_dtype(randn({static_cast<int64_t>(starts.size()), 7, 3, 10}, gen), dt);
      const Tensor pos = positions(starts, 7);
      const Tensor y = apply_rope(x, pos, 500.0);
      EXPECT_LT(rel_rms_error(to_dtype(y, DType::f64), rope_by_hand(x, pos, 500.0)), dt == DType::f64 ? 1e-12 : 1e-6)
          << "starts " << starts.size() << " dtype " << dtype_name(dt);
    }
  }
}

TEST(Rope, GradientMatchesFiniteDifferences) {
  auto rope_at = [](std::vector<int64_t> starts) {
    return [starts](const TensorList& in) { return apply_rope(in[0], positions(starts, in[0].size(1)), 10000.0); };
  };
  EXPECT_TRUE(check_gradients({"SharedPositions", {{2, 5, 2, 6}}, rope_at({0, 0})}));
  EXPECT_TRUE(check_gradients({"SpreadPositions", {{3, 4, 1, 8}}, rope_at({0, 9, 400})}));
}

}  // namespace
}  // namespace lnx::modules
