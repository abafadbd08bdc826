// gemm_f32 against the f64 product over every transpose, sizes around the 8 × 32 micro-tile,
// the 16 × 16 transposes that pack Bᵀ and the 256-deep K blocks, with alpha and beta; strided
// operands whose padding is never read or written; the same bits at every thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tensor/cpu/gemm_f32.h"
#include "tensor/cpu/parallel.h"
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

TEST(GemmF32, MatchesF64OverTransposesAndOddSizes) {
  const std::vector<Case> cases = {
      {1, 1, 1, false, false, 1, 0},         {7, 33, 5, false, false, 1, 0},   {9, 31, 64, true, false, 1, 0},
      {33, 65, 129, false, true, 0.5f, 1},   {17, 40, 3, true, true, 2, -0.5}, {130, 129, 257, false, false, 1, 0},
      {64, 96, 600, true, false, 1, 1},      {100, 50, 77, true, true, 1, 0},  {32, 32, 32, false, true, 1, 0},
      {4096 / 8, 64, 48, false, true, 1, 0}, {64, 2, 1000, true, false, 1, 0}, {200, 48, 33, false, true, -1, 0.25f}};
  Generator gen(5);
  for (const Case& c : cases) {
    const std::vector<float> a = randn({c.M * c.K}, gen).to_vector<float>();
    const std::vector<float> b = randn({c.K * c.N}, gen).to_vector<float>();
    std::vector<float> out = randn({c.M * c.N}, gen).to_vector<float>();
    const std::vector<float> c0 = out;
    if (c.beta == 0) std::fill(out.begin(), out.end(), std::numeric_limits<float>::quiet_NaN());  // never read
    auto A = [&](int64_t i, int64_t k) { return c.ta ? a[k * c.M + i] : a[i * c.K + k]; };
    auto B = [&](int64_t k, int64_t j) { return c.tb ? b[j * c.K + k] : b[k * c.N + j]; };
    std::vector<double> want(out.size());
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < c.K; ++k) s += static_cast<double>(A(i, k)) * B(k, j);
        want[i * c.N + j] = c.alpha * s + (c.beta == 0 ? 0.0 : c.beta * static_cast<double>(c0[i * c.N + j]));
      }
    gemm_f32(c.ta ? Transpose::Yes : Transpose::No, c.tb ? Transpose::Yes : Transpose::No, c.M, c.N, c.K, c.alpha,
             a.data(), c.ta ? c.M : c.K, b.data(), c.tb ? c.K : c.N, c.beta, out.data(), c.N);
    EXPECT_LT(rel_rms(out, want), 1e-6) << testing::PrintToString(std::vector<int64_t>{c.M, c.N, c.K, c.ta, c.tb});
  }
}

TEST(GemmF32, LeadingDimensionsWiderThanTheRowsAndEmptyK) {
  // op(A) = Aᵀ with A [K × M] in a buffer of stride 23, B [N × K] (op(B) = Bᵀ) of stride 45, C
  // [M × N] of stride 43: the padding is NaN (it would show if read) and C's is never written.
  const int64_t M = 19, K = 37, N = 40, lda = 23, ldb = 45, ldc = 43;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Generator gen(9);
  std::vector<float> a(K * lda, nan), b(N * ldb, nan), c(M * ldc, 7.0f);
  const std::vector<float> av = randn({K * M}, gen).to_vector<float>(), bv = randn({N * K}, gen).to_vector<float>();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < M; ++i) a[k * lda + i] = av[k * M + i];
  for (int64_t j = 0; j < N; ++j)
    for (int64_t k = 0; k < K; ++k) b[j * ldb + k] = bv[j * K + k];
  gemm_f32(Transpose::Yes, Transpose::Yes, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), ldc);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double want = 0;
      for (int64_t k = 0; k < K; ++k) want += static_cast<double>(av[k * M + i]) * bv[j * K + k];
      EXPECT_NEAR(c[i * ldc + j], want, 1e-5 * (1 + std::abs(want))) << i << "," << j;
    }
    for (int64_t j = N; j < ldc; ++j) EXPECT_EQ(c[i * ldc + j], 7.0f) << "padding of row " << i;
  }
  // K = 0: C = beta · C.
  std::vector<float> c2(4, 2.0f);
  gemm_f32(Transpose::No, Transpose::No, 2, 2, 0, 1.0f, a.data(), 1, b.data(), 2, 0.5f, c2.data(), 2);
  for (float v : c2) EXPECT_EQ(v, 1.0f);
}

TEST(GemmF32, StridedOperandsInPlaceAndAlphaZero) {
  // op(A) = A [M × K] in rows of 310, op(B) = B [K × N] in rows of 50, C [M × N] in rows of 41,
  // K past one 256-deep block and beta = 1 so that the second block reads C back; M and N end
  // in partial tiles.
  const int64_t M = 21, K = 300, N = 37, lda = 310, ldb = 50, ldc = 41;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Generator gen(11);
  std::vector<float> a(M * lda, nan), b(K * ldb, nan), c(M * ldc, nan);
  const std::vector<float> av = randn({M * K}, gen).to_vector<float>(), bv = randn({K * N}, gen).to_vector<float>();
  const std::vector<float> cv = randn({M * N}, gen).to_vector<float>();
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) a[i * lda + k] = av[i * K + k];
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) b[k * ldb + j] = bv[k * N + j];
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) c[i * ldc + j] = cv[i * N + j];
  gemm_f32(Transpose::No, Transpose::No, M, N, K, 0.5f, a.data(), lda, b.data(), ldb, 1.0f, c.data(), ldc);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double want = 0;
      for (int64_t k = 0; k < K; ++k) want += static_cast<double>(av[i * K + k]) * bv[k * N + j];
      want = 0.5 * want + cv[i * N + j];
      EXPECT_NEAR(c[i * ldc + j], want, 2e-5 * (1 + std::abs(want))) << i << "," << j;
    }
    for (int64_t j = N; j < ldc; ++j) EXPECT_TRUE(std::isnan(c[i * ldc + j])) << "padding of row " << i;
  }
  // alpha = 0: C = beta · C, and A and B (NaN here) are not read.
  std::vector<float> c2(M * N, 2.0f), nan_a(M * K, nan), nan_b(K * N, nan);
  gemm_f32(Transpose::No, Transpose::Yes, M, N, K, 0.0f, nan_a.data(), K, nan_b.data(), K, 0.5f, c2.data(), N);
  for (float v : c2) EXPECT_EQ(v, 1.0f);
}

TEST(GemmF32, CalledFromInsideParallelLoops) {
  // Each worker runs its own products with op(B) = Bᵀ (its own packing buffer) while the others
  // run theirs, as the chunk forms do.
  Generator gen(12);
  const int64_t M = 48, N = 40, K = 72, count = 16;
  const std::vector<float> a = randn({count * M * K}, gen).to_vector<float>();
  const std::vector<float> b = randn({count * N * K}, gen).to_vector<float>();
  std::vector<float> out(static_cast<size_t>(count * M * N));
  parallel_for(count, 1, [&](int64_t s, int64_t e) {
    for (int64_t t = s; t < e; ++t)
      gemm_f32(Transpose::No, Transpose::Yes, M, N - t, K, 1.0f, a.data() + t * M * K, K, b.data() + t * N * K, K, 0.0f,
               out.data() + t * M * N, N);
  });
  for (int64_t t = 0; t < count; ++t) {
    std::vector<float> got;
    std::vector<double> want;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N - t; ++j) {
        double w = 0;
        for (int64_t k = 0; k < K; ++k) w += static_cast<double>(a[t * M * K + i * K + k]) * b[t * N * K + j * K + k];
        got.push_back(out[t * M * N + i * N + j]);
        want.push_back(w);
      }
    EXPECT_LT(rel_rms(got, want), 1e-6) << "product " << t;
  }
}

TEST(GemmF32, PreferredShapes) {
  if (!gemm_f32_native()) GTEST_SKIP() << "no AVX-512: every f32 product is OpenBLAS's";
  EXPECT_TRUE(gemm_f32_preferred(Transpose::Yes, 4096, 192, 64));      // a narrow model's projection
  EXPECT_TRUE(gemm_f32_preferred(Transpose::No, 64, 192, 4096));       // its weight gradient
  EXPECT_TRUE(gemm_f32_preferred(Transpose::Yes, 32, 32, 32));         // a chunk's q · kᵀ
  EXPECT_FALSE(gemm_f32_preferred(Transpose::No, 32, 32, 32));         // OpenBLAS's small kernels
  EXPECT_FALSE(gemm_f32_preferred(Transpose::No, 1024, 1024, 1024));   // large: sgemm
  EXPECT_FALSE(gemm_f32_preferred(Transpose::Yes, 4, 50288, 768));     // a few rows through a head
  EXPECT_FALSE(gemm_f32_preferred(Transpose::Yes, 4096, 2, 64));       // a per-head gate
  EXPECT_FALSE(gemm_f32_preferred(Transpose::Yes, 4096, 2048, 2048));  // Bᵀ too large to pack whole
}

TEST(GemmF32, SameBitsAtEveryThreadCount) {
  // A weight gradient's shape (few outputs, long K) and a projection's (many rows).
  const int threads = num_threads();
  for (const Case& c : {Case{64, 64, 1000, true, false, 1, 0}, Case{1000, 96, 64, false, true, 1, 0}}) {
    Generator gen(3);
    const std::vector<float> a = randn({c.M * c.K}, gen).to_vector<float>();
    const std::vector<float> b = randn({c.K * c.N}, gen).to_vector<float>();
    std::vector<std::vector<float>> outs;
    for (int t : {1, 2, 3}) {
      set_num_threads(t);
      std::vector<float> out(static_cast<size_t>(c.M * c.N));
      gemm_f32(c.ta ? Transpose::Yes : Transpose::No, c.tb ? Transpose::Yes : Transpose::No, c.M, c.N, c.K, 1.0f,
               a.data(), c.ta ? c.M : c.K, b.data(), c.tb ? c.K : c.N, 0.0f, out.data(), c.N);
      outs.push_back(out);
    }
    set_num_threads(threads);
    EXPECT_EQ(outs[0], outs[1]);
    EXPECT_EQ(outs[0], outs[2]);
  }
}

}  // namespace
}  // namespace lnx
