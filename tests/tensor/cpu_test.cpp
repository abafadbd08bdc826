// CPU execution: BLAS loading and kernel choice, parallel loops, vectorised math.
#include <gtest/gtest.h>

#include <mutex>

#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "numeric.h"
#include "tensor/cpu/blas.h"
#include "tensor/cpu/cpu_features.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vec_math.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

TEST(Blas, RunsAvx512KernelsOnAnAvx512Cpu) {
  const auto& cpu = cpu_features();
  const auto& info = blas_info();
  EXPECT_FALSE(info.library.empty());
  if (!(cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512dq))
    GTEST_SKIP() << "CPU has no AVX-512: nothing to choose";
  // Whatever OPENBLAS_CORETYPE the environment sets (these machines set Haswell), the
  // library must run an AVX-512 kernel family.
  EXPECT_TRUE(info.core == "SkylakeX" || info.core == "Cooperlake" || info.core == "SapphireRapids")
      << "core " << info.core;
  const char* env = std::getenv("OPENBLAS_CORETYPE");
  if (env && std::string(env) == "Haswell") {
    EXPECT_TRUE(info.overridden);
    EXPECT_NE(info.note.find("OPENBLAS_CORETYPE=Haswell"), std::string::npos) << info.note;
  }
}

TEST(Blas, IsTheOpenMPBuild) {
  const auto& info = blas_info();
  if (info.threading.empty()) GTEST_SKIP() << "not OpenBLAS";
  EXPECT_EQ(info.threading, "openmp");
}

TEST(Blas, GemmComputesRowMajorProducts) {
  // [2,3] · [3,2] and the transposed forms.
  std::vector<double> a{1, 2, 3, 4, 5, 6}, b{7, 8, 9, 10, 11, 12}, c(4, -1.0);
  gemm(Transpose::No, Transpose::No, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 2);
  EXPECT_EQ(c, (std::vector<double>{58, 64, 139, 154}));
  // aᵀ stored as [3,2]; bᵀ stored as [2,3].
  std::vector<double> at{1, 4, 2, 5, 3, 6}, bt{7, 9, 11, 8, 10, 12};
  gemm(Transpose::Yes, Transpose::Yes, 2, 2, 3, 1.0, at.data(), 2, bt.data(), 3, 0.0, c.data(), 2);
  EXPECT_EQ(c, (std::vector<double>{58, 64, 139, 154}));
}

TEST(Blas, OneRowProductsInEveryLayoutWithStridesAndBeta) {
  // M = 1 goes through gemv: op(A) [1, K] (a row, or a column of a transposed A with lda), op(B)
  // [K, N] stored either way with a padded ldb, C = α·A·B + β·C, in f32 and f64.
  const int64_t K = 5, N = 3, pad = 2;
  std::vector<double> a(K), col(K * 4, 0.0), b(K * (N + pad)), bt(N * (K + pad)), want(N);
  for (int64_t k = 0; k < K; ++k) a[k] = col[k * 4] = 0.5 + k;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) b[k * (N + pad) + n] = bt[n * (K + pad) + k] = 1.0 + k * N + n * 0.25;
  for (int64_t n = 0; n < N; ++n) {
    want[n] = 0.5 * (10.0 + n);  // β·C with C = 10 + n
    for (int64_t k = 0; k < K; ++k) want[n] += 2.0 * a[k] * b[k * (N + pad) + n];
  }
  for (Transpose ta : {Transpose::No, Transpose::Yes})
    for (Transpose tb : {Transpose::No, Transpose::Yes}) {
      const double* A = ta == Transpose::No ? a.data() : col.data();
      const int64_t lda = ta == Transpose::No ? K : 4;
      const double* B = tb == Transpose::No ? b.data() : bt.data();
      const int64_t ldb = tb == Transpose::No ? N + pad : K + pad;
      std::vector<double> c{10, 11, 12};
      gemm(ta, tb, 1, N, K, 2.0, A, lda, B, ldb, 0.5, c.data(), N);
      for (int64_t n = 0; n < N; ++n) EXPECT_NEAR(c[n], want[n], 1e-12);
      std::vector<float> af(A, A + (ta == Transpose::No ? K : K * 4)),
          bf(B, B + (tb == Transpose::No ? b.size() : bt.size())), cf{10, 11, 12};
      gemm(ta, tb, 1, N, K, 2.0f, af.data(), lda, bf.data(), ldb, 0.5f, cf.data(), N);
      for (int64_t n = 0; n < N; ++n) EXPECT_NEAR(cf[n], want[n], 1e-4);
    }
}

TEST(Parallel, ExceptionsInWorkersReachTheCaller) {
  if (num_threads() < 2) GTEST_SKIP() << "one thread";
  EXPECT_THROW(parallel_for(1000, 1,
                            [](int64_t b, int64_t) {
                              if (b > 0) throw ValueError("worker failed");
                            }),
               ValueError);
  EXPECT_THROW(parallel_for_dynamic(1000, 10,
                                    [](int64_t b, int64_t) {
                                      if (b == 500) throw std::runtime_error("chunk failed");
                                    }),
               std::runtime_error);
}

TEST(Parallel, EveryIndexIsVisitedOnce) {
  std::vector<int> hits(10007, 0);
  parallel_for(10007, 100, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  parallel_for_dynamic(10007, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  parallel_for_weighted(
      10007, [](int64_t i) { return i % 7; },
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
  for (int h : hits) ASSERT_EQ(h, 3);
}

TEST(Parallel, WeightedRangesAreContiguousAndBalanced) {
  // One heavy item first, then light ones: with 4 threads the heavy item is a range alone.
  const int before = num_threads();
  set_num_threads(4);
  std::vector<std::pair<int64_t, int64_t>> ranges(4, {-1, -1});
  std::mutex mu;
  parallel_for_weighted(
      101, [](int64_t i) { return i == 0 ? 300.0 : 1.0; },
      [&](int64_t b, int64_t e) {
        std::lock_guard<std::mutex> lock(mu);
        ranges[omp_get_thread_num()] = {b, e};
      });
  set_num_threads(before);
  EXPECT_EQ(ranges[0], std::make_pair(int64_t(0), int64_t(1)));
  int64_t covered = 0;
  for (const auto& [b, e] : ranges)
    if (b >= 0) covered += e - b;
  EXPECT_EQ(covered, 101);
  // Zero weights everywhere still visit every item.
  std::vector<int> hits(50, 0);
  parallel_for_weighted(
      50, [](int64_t) { return 0.0; },
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
  for (int h : hits) ASSERT_EQ(h, 1);
}

TEST(VecMath, ExpF32IsAccurateAcrossItsRange) {
  double worst = 0;
  for (double x = -87.0; x <= 88.7; x += 0.0137) {
    const float xf = static_cast<float>(x);
    const double ref = std::exp(static_cast<double>(xf));
    worst = std::max(worst, std::abs(exp_f32(xf) - ref) / ref);
  }
  EXPECT_LT(worst, 2.5e-7);  // ~2 ulp
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-200.0f), 0.0f);
  EXPECT_TRUE(std::isinf(exp_f32(100.0f)));
  EXPECT_TRUE(std::isinf(exp_f32(INFINITY)));
  EXPECT_EQ(exp_f32(-INFINITY), 0.0f);
  EXPECT_TRUE(std::isnan(exp_f32(NAN)));
}

// f32 forms against f64 on tensors large enough to take the threaded paths (DESIGN.md §8:
// relative RMS ≤ 1e-5).
TEST(VecMath, F32UnaryOpsMatchF64) {
  Generator g(11);
  Tensor x64 = mul(randn({300, 1001}, g, DType::f64), 4.0);
  Tensor x32 = x64.to(DType::f32);
  Tensor pos64 = add(abs(x64), 0.1), pos32 = pos64.to(DType::f32);
  struct Case {
    const char* name;
    Tensor (*fn)(const Tensor&);
    bool positive;
  };
  const Case cases[] = {
      {"exp", [](const Tensor& t) { return exp(t); }, false},
      {"sigmoid", [](const Tensor& t) { return sigmoid(t); }, false},
      {"silu", [](const Tensor& t) { return silu(t); }, false},
      {"tanh", [](const Tensor& t) { return tanh(t); }, false},
      {"softplus", [](const Tensor& t) { return softplus(t); }, false},
      {"logsigmoid", [](const Tensor& t) { return logsigmoid(t); }, false},
      {"gelu", [](const Tensor& t) { return gelu(t); }, false},
      {"log", [](const Tensor& t) { return log(t); }, true},
      {"rsqrt", [](const Tensor& t) { return rsqrt(t); }, true},
  };
  for (const auto& c : cases) {
    Tensor a = c.fn(c.positive ? pos32 : x32), b = c.fn(c.positive ? pos64 : x64);
    EXPECT_TRUE(all_close(a, b, 1e-6)) << c.name;
  }
  // Gradients through the threaded paths too.
  Tensor xg = x32.detach().set_requires_grad();
  sum(silu(xg)).backward();
  Tensor x64g = x64.detach().set_requires_grad();
  sum(silu(x64g)).backward();
  EXPECT_TRUE(all_close(xg.grad(), x64g.grad(), 1e-6));
}

TEST(Elementwise, SwigluIsSiluTimesUpBitForBit) {
  // The fused op computes what silu then mul did, in the same order: the same bits forward and
  // back, on sizes that split over threads.
  Generator g(4);
  const Tensor gate = mul(randn({300, 1001}, g), 3.0), up = randn({300, 1001}, g), dy = randn({300, 1001}, g);
  Tensor g1 = gate.detach().set_requires_grad(), u1 = up.detach().set_requires_grad();
  Tensor g2 = gate.detach().set_requires_grad(), u2 = up.detach().set_requires_grad();
  Tensor fused = swiglu(g1, u1), composite = mul(silu(g2), u2);
  EXPECT_EQ(fused.to_vector<float>(), composite.to_vector<float>());
  sum(mul(fused, dy)).backward();
  sum(mul(composite, dy)).backward();
  EXPECT_EQ(g1.grad().to_vector<float>(), g2.grad().to_vector<float>());
  EXPECT_EQ(u1.grad().to_vector<float>(), u2.grad().to_vector<float>());
  EXPECT_THROW(swiglu(gate, randn({300, 1000}, g)), ShapeError);
  EXPECT_THROW(swiglu(gate, up.to(DType::f64)), DTypeError);
  // A gradient for one input only.
  Tensor u3 = up.detach().set_requires_grad();
  sum(mul(swiglu(gate, u3), dy)).backward();
  EXPECT_EQ(u3.grad().to_vector<float>(), u2.grad().to_vector<float>());
}

}  // namespace
}  // namespace lnx
