// Packed weights for generation: bf16 and int8 (per-row scales) against the f32 weight they
// stand for, and packed_matmul against the f64 product with the packed values, for 1 … 40
// rows of x (streamed in passes of 8, and the sgemm path above 32), odd sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "numeric.h"
#include "tensor/cpu/packed_weight.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

TEST(PackedWeight, Int8KeepsEachRowWithinHalfAStepOfItsScale) {
  Generator gen(1);
  const int64_t O = 5, I = 37;
  std::vector<float> w = randn({O * I}, gen).to_vector<float>();
  for (int64_t i = 0; i < I; ++i) w[static_cast<size_t>(2 * I + i)] = 0.0f;  // an all-zero row
  const PackedWeight p = pack_weight(w.data(), O, I, WeightFormat::int8);
  EXPECT_EQ(p.bytes(), O * I + 4 * O);
  for (int64_t o = 0; o < O; ++o) {
    float absmax = 0;
    for (int64_t i = 0; i < I; ++i) absmax = std::max(absmax, std::abs(w[static_cast<size_t>(o * I + i)]));
    for (int64_t i = 0; i < I; ++i) {
      const float err = std::abs(p.at(o, i) - w[static_cast<size_t>(o * I + i)]);
      EXPECT_LE(err, absmax / 127.0f * 0.5f * 1.0001f + 1e-12f) << o << "," << i;
    }
  }
  EXPECT_EQ(p.at(2, 3), 0.0f);
}

TEST(PackedWeight, Bf16IsTheRoundedWeight) {
  Generator gen(2);
  std::vector<float> w = randn({3 * 20}, gen).to_vector<float>();
  const PackedWeight p = pack_weight(w.data(), 3, 20, WeightFormat::bf16);
  EXPECT_EQ(p.bytes(), 3 * 20 * 2);
  for (int64_t k = 0; k < 60; ++k) {
    const float r = p.at(k / 20, k % 20), x = w[static_cast<size_t>(k)];
    EXPECT_LE(std::abs(r - x), std::abs(x) * (1.0f / 256) + 1e-30f) << k;  // 8 significant bits
  }
}

TEST(PackedWeight, NonFiniteWeightsAndF32AreRefused) {
  std::vector<float> w = {1.0f, std::numeric_limits<float>::infinity()};
  EXPECT_THROW(pack_weight(w.data(), 1, 2, WeightFormat::int8), ValueError);
  EXPECT_THROW(pack_weight(w.data(), 1, 1, WeightFormat::f32), ValueError);
  EXPECT_THROW(parse_weight_format("int4"), ValueError);
}

TEST(PackedWeight, MatmulMatchesF64WithThePackedValues) {
  Generator gen(3);
  for (WeightFormat f : {WeightFormat::bf16, WeightFormat::int8})
    for (int64_t M : {1, 3, 8, 9, 33, 40}) {
      const int64_t O = M == 3 ? 1 : 29, I = M == 9 ? 7 : 53;  // one row; no 16-wide step; a tail of 5
      const std::vector<float> w = randn({O * I}, gen).to_vector<float>();
      const std::vector<float> x = randn({M * I}, gen).to_vector<float>();
      const PackedWeight p = pack_weight(w.data(), O, I, f);
      std::vector<float> y(static_cast<size_t>(M * O));
      packed_matmul(x.data(), M, p, y.data());
      std::vector<double> want(y.size());
      for (int64_t m = 0; m < M; ++m)
        for (int64_t o = 0; o < O; ++o) {
          double s = 0;
          for (int64_t i = 0; i < I; ++i) s += static_cast<double>(x[static_cast<size_t>(m * I + i)]) * p.at(o, i);
          want[static_cast<size_t>(m * O + o)] = s;
        }
      EXPECT_LT(rel_rms_error(from_vector(y, {M, O}), from_vector(want, {M, O})), 1e-6)
          << weight_format_name(f) << " M=" << M;
    }
}

}  // namespace
}  // namespace lnx
