// Packed weights for generation: bf16 and int8 (per-row scales) against the f32 weight they
// stand for, and packed_matmul (one weight or a group of one input) against the f64 product
// with the packed values, for 1 … 40 rows of x (streamed in passes of 8, and the sgemm path
// above 32), odd sizes.
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

// x [M, I] · pᵀ in f64 with the packed values.
Tensor product_f64(const std::vector<float>& x, int64_t M, const PackedWeight& p) {
  const int64_t O = p.rows, I = p.cols;
  std::vector<double> want(static_cast<size_t>(M * O));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t o = 0; o < O; ++o) {
      double s = 0;
      for (int64_t i = 0; i < I; ++i) s += static_cast<double>(x[static_cast<size_t>(m * I + i)]) * p.at(o, i);
      want[static_cast<size_t>(m * O + o)] = s;
    }
  return from_vector(want, {M, O});
}

TEST(PackedWeight, MatmulMatchesF64WithThePackedValues) {
  Generator gen(3);
  for (WeightFormat f : {WeightFormat::bf16, WeightFormat::int8})
    for (int64_t M : {1, 2, 3, 8, 9, 33, 40})
      // one row; no 16-wide step; a tail of 5; longer rows with tails of 4 and 8.
      for (int64_t I : {M == 9 ? int64_t{7} : int64_t{53}, int64_t{100}, int64_t{200}}) {
        const int64_t O = M == 3 ? 1 : 29;
        const std::vector<float> w = randn({O * I}, gen).to_vector<float>();
        const std::vector<float> x = randn({M * I}, gen).to_vector<float>();
        const PackedWeight p = pack_weight(w.data(), O, I, f);
        std::vector<float> y(static_cast<size_t>(M * O));
        packed_matmul(x.data(), M, p, y.data());
        EXPECT_LT(rel_rms_error(from_vector(y, {M, O}), product_f64(x, M, p)), 1e-6)
            << weight_format_name(f) << " M=" << M << " I=" << I;
      }
}

// A group of weights of one input is the products one by one (each checked against f64
// above): rows handed out across the weights' boundaries, a weight of one row, mixed formats
// (each on its own), the sgemm path.
TEST(PackedWeight, GroupIsEachProductOfTheSameInput) {
  Generator gen(4);
  // Narrow rows, so that the 5501 rows make two threads' work (a thread takes 65536 weights at
  // least) and the split falls inside the first weight.
  const int64_t I = 16;
  for (int64_t M : {1, 5, 40})
    for (bool mixed : {false, true}) {
      std::vector<PackedWeight> ps;
      for (int64_t O : {3000, 1, 2500}) {
        const std::vector<float> w = randn({O * I}, gen).to_vector<float>();
        const bool bf16 = mixed && O == 1;
        ps.push_back(pack_weight(w.data(), O, I, bf16 ? WeightFormat::bf16 : WeightFormat::int8));
      }
      const std::vector<float> x = randn({M * I}, gen).to_vector<float>();
      std::vector<std::vector<float>> ys;
      std::vector<float*> out;
      std::vector<const PackedWeight*> ws;
      for (const PackedWeight& p : ps) {
        ys.emplace_back(static_cast<size_t>(M * p.rows), -1.0f);
        ws.push_back(&p);
      }
      for (auto& y : ys) out.push_back(y.data());
      packed_matmul_group(x.data(), M, ws, out);
      for (size_t j = 0; j < ps.size(); ++j) {
        // Each output row is summed by the same loop as a product alone: equal to the bit.
        std::vector<float> alone(ys[j].size());
        packed_matmul(x.data(), M, ps[j], alone.data());
        EXPECT_EQ(ys[j], alone) << "M=" << M << " weight " << j << (mixed ? " mixed" : "");
      }
    }
}

TEST(PackedWeight, GroupNeedsOneInputWidthAndAnOutputPerWeight) {
  Generator gen(5);
  const std::vector<float> w = randn({4 * 6}, gen).to_vector<float>();
  const PackedWeight a = pack_weight(w.data(), 4, 6, WeightFormat::int8);
  const PackedWeight b = pack_weight(w.data(), 6, 4, WeightFormat::int8);
  std::vector<float> x(6, 1.0f), y(24);
  EXPECT_THROW(packed_matmul_group(x.data(), 1, {&a, &b}, {y.data(), y.data()}), ShapeError);
  EXPECT_THROW(packed_matmul_group(x.data(), 1, {&a}, {}), ValueError);
  EXPECT_THROW(packed_matmul_group(x.data(), 1, {}, {}), ValueError);
}

TEST(PackedWeight, LargeWeightsAreHugePageAligned) {
  void* big = allocate_weight_bytes((size_t(2) << 20) + 1);
  void* small = allocate_weight_bytes(100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big) % (size_t(2) << 20), 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  free_weight_bytes(big);
  free_weight_bytes(small);
}

}  // namespace
}  // namespace lnx
