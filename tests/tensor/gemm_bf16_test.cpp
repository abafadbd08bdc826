// gemm_bf16 against the f64 product of its operands rounded to bf16 (what it computes, up to
// f32 sums) and against the unrounded f64 product (bf16's own error), over every transpose,
// odd sizes around the 8 × 32 micro-tile and odd K, with alpha and beta.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tensor/cpu/gemm_bf16.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

struct Case {
  int64_t M, N, K;
  bool ta, tb;
  float alpha, beta;
};

double rel_rms(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

TEST(GemmBf16, RoundsTiesToEvenAndKeepsNaN) {
  EXPECT_EQ(round_to_bf16(1.0f), 1.0f);
  EXPECT_EQ(round_to_bf16(1.0f + 1.0f / 256), 1.0f);  // halfway between 1 and 1 + 2⁻⁷: to even
  EXPECT_EQ(round_to_bf16(1.0f + 3.0f / 256), 1.0f + 4.0f / 256);
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(round_to_bf16(-0.0f), -0.0f);
}

TEST(GemmBf16, MatchesF64OverTransposesAndOddSizes) {
  const std::vector<Case> cases = {{1, 1, 1, false, false, 1, 0},    {7, 33, 5, false, false, 1, 0},
                                   {9, 31, 64, true, false, 1, 0},   {33, 65, 129, false, true, 0.5f, 1},
                                   {17, 40, 3, true, true, 2, -0.5}, {130, 129, 257, false, false, 1, 0},
                                   {64, 96, 200, true, false, 1, 1}, {100, 50, 77, true, true, 1, 0}};
  Generator gen(5);
  for (const Case& c : cases) {
    const std::vector<float> a = randn({c.M * c.K}, gen).to_vector<float>();
    const std::vector<float> b = randn({c.K * c.N}, gen).to_vector<float>();
    std::vector<float> out = randn({c.M * c.N}, gen).to_vector<float>();
    const std::vector<float> c0 = out;
    if (c.beta == 0) std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());  // never read
    auto A = [&](int64_t i, int64_t k) { return c.ta ? a[k * c.M + i] : a[i * c.K + k]; };
    auto B = [&](int64_t k, int64_t j) { return c.tb ? b[j * c.K + k] : b[k * c.N + j]; };
    std::vector<double> rounded(out.size()), exact(out.size());
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double r = 0, e = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          r += static_cast<double>(round_to_bf16(A(i, k))) * round_to_bf16(B(k, j));
          e += static_cast<double>(A(i, k)) * B(k, j);
        }
        const double keep = c.beta == 0 ? 0.0 : c.beta * static_cast<double>(c0[i * c.N + j]);
        rounded[i * c.N + j] = c.alpha * r + keep;
        exact[i * c.N + j] = c.alpha * e + keep;
      }
    gemm_bf16(c.ta ? Transpose::Yes : Transpose::No, c.tb ? Transpose::Yes : Transpose::No, c.M, c.N, c.K, c.alpha,
              a.data(), c.ta ? c.M : c.K, b.data(), c.tb ? c.K : c.N, c.beta, out.data(), c.N);
    const std::string what = testing::PrintToString(std::vector<int64_t>{c.M, c.N, c.K, c.ta, c.tb});
    EXPECT_LT(rel_rms(out, rounded), 1e-6) << what;
    // bf16 keeps 8 significant bits: each product is off by up to ~2⁻⁸ relative, and the
    // errors of K products partly cancel.
    EXPECT_LT(rel_rms(out, exact), 1e-2) << what;
    EXPECT_GT(rel_rms(out, exact), 1e-5) << what << ": the operands were not rounded to bf16";
  }
}

TEST(GemmBf16, LeadingDimensionsWiderThanTheRowsAndEmptyK) {
  // A [5 × 7] in a buffer of stride 11, B [7 × 40] of stride 45, C [5 × 40] of stride 43: the
  // padding columns are never read (NaN there would show) and C's padding is never written.
  const int64_t M = 5, K = 7, N = 40, lda = 11, ldb = 45, ldc = 43;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Generator gen(9);
  std::vector<float> a(M * lda, nan), b(K * ldb, nan), c(M * ldc, 7.0f);
  const std::vector<float> av = randn({M * K}, gen).to_vector<float>(), bv = randn({K * N}, gen).to_vector<float>();
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) a[i * lda + k] = av[i * K + k];
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) b[k * ldb + j] = bv[k * N + j];
  gemm_bf16(Transpose::No, Transpose::No, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), ldc);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double want = 0;
      for (int64_t k = 0; k < K; ++k)
        want += static_cast<double>(round_to_bf16(av[i * K + k])) * round_to_bf16(bv[k * N + j]);
      EXPECT_NEAR(c[i * ldc + j], want, 1e-5 * (1 + std::abs(want))) << i << "," << j;
    }
    for (int64_t j = N; j < ldc; ++j) EXPECT_EQ(c[i * ldc + j], 7.0f) << "padding of row " << i;
  }
  // K = 0: C = beta · C.
  std::vector<float> c2(4, 2.0f);
  gemm_bf16(Transpose::No, Transpose::No, 2, 2, 0, 1.0f, a.data(), 1, b.data(), 2, 0.5f, c2.data(), 2);
  for (float v : c2) EXPECT_EQ(v, 1.0f);
}

}  // namespace
}  // namespace lnx
