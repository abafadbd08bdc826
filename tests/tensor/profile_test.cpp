#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "kernels/mechanism.h"
#include "tensor/ops.h"
#include "tensor/profile.h"

namespace lnx {
namespace {

// Profiling restores its off state whatever a test does.
struct ProfileOn {
  ProfileOn() {
    profile_reset();
    profile_enable(true);
  }
  ~ProfileOn() { profile_enable(false); }
};

TEST(Profile, OffRecordsNothing) {
  profile_enable(false);
  profile_reset();
  Generator gen(1);
  Tensor a = randn({64, 64}, gen);
  matmul(a, a);
  const ProfileTotals t = profile_totals();
  EXPECT_EQ(t.gemm_seconds, 0.0);
  EXPECT_EQ(t.kernel_seconds, 0.0);
  EXPECT_EQ(t.blas_thread_seconds, 0.0);
  EXPECT_EQ(t.blas_flops, 0.0);
}

TEST(Profile, MatmulCountsAsGemmAndItsBlasCall) {
  Generator gen(1);
  Tensor a = randn({256, 256}, gen);
  ProfileOn on;
  matmul(a, a);
  const ProfileTotals t = profile_totals();
  EXPECT_GT(t.gemm_seconds, 0.0);
  EXPECT_EQ(t.kernel_seconds, 0.0);
  EXPECT_GT(t.blas_thread_seconds, 0.0);
  EXPECT_EQ(t.blas_flops, 2.0 * 256 * 256 * 256);
}

TEST(Profile, BlasCallsInsideAKernelCountForTheKernelAndAsBlasTime) {
  const kernels::Mechanism& m = kernels::mechanism("simple_gla");
  Generator gen(2);
  TensorDict in = m.make_inputs(kernels::ProblemSize{1, 256, 2, 32, 32}, gen, DType::f32);
  ProfileOn on;
  kernels::run("simple_gla", kernels::Form::chunk, in);
  const ProfileTotals t = profile_totals();
  EXPECT_GT(t.kernel_seconds, 0.0);
  EXPECT_EQ(t.gemm_seconds, 0.0);  // the kernel's GEMMs are lnx::gemm calls, not matmul ops
  EXPECT_GT(t.blas_thread_seconds, 0.0);
  profile_reset();
  const ProfileTotals z = profile_totals();
  EXPECT_EQ(z.kernel_seconds, 0.0);
  EXPECT_EQ(z.blas_thread_seconds, 0.0);
}

TEST(Profile, CategoriesSplitABackwardWithoutOverlap) {
  Generator gen(3);
  Tensor w = randn({128, 128}, gen);
  w.set_requires_grad(true);
  Tensor x = randn({64, 128}, gen);
  ProfileOn on;
  const auto t0 = std::chrono::steady_clock::now();
  Tensor loss = sum(silu(matmul(x, w)));  // matmul: gemm; silu, sum: outside any scope
  loss.backward();                        // engine: autodiff; silu's and sum's vjps: other
  {
    ProfileScope optimizer(ProfileCategory::optimizer);
    Tensor step = mul(w.grad(), 0.1);  // inside the optimizer scope: counted there only
    ProfileScope inner(ProfileCategory::gemm);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const ProfileTotals t = profile_totals();
  EXPECT_GT(t.gemm_seconds, 0.0);
  EXPECT_GT(t.autodiff_seconds, 0.0);
  EXPECT_GT(t.other_seconds, 0.0);
  EXPECT_GT(t.optimizer_seconds, 0.0);
  EXPECT_GT(t.allocation_seconds, 0.0);
  EXPECT_EQ(t.kernel_seconds, 0.0);
  EXPECT_LE(t.categorised_seconds(), wall);  // no time counted twice
}

TEST(Profile, AllocationOnOtherThreadsIsNotCounted) {
  ProfileOn on;
  std::thread([] { Tensor::empty({1024}, DType::f32); }).join();
  EXPECT_EQ(profile_totals().allocation_seconds, 0.0);
}

}  // namespace
}  // namespace lnx
