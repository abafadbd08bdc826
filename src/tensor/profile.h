// A coarse time profile for benchmarks: wall time spent in GEMM ops (matmul) and in mechanism
// kernels (kernels::run), forward and backward, everything else being "the rest". Off unless
// enabled; then each category's outermost scope on the calling thread adds its wall time
// (scopes nested in another category's scope, like a reference kernel's matmuls, count for
// the outer one). Backward nodes carry the category that was active when they were recorded.
// Separately, every BLAS call (lnx::gemm) adds its FLOPs (2·M·N·K) to blas_flops and its wall
// time to blas_thread_seconds, summed over
// the threads that made the calls: inside a kernel's parallel loop, blas_thread_seconds divided
// by the thread count is how long the kernel would take if everything but its GEMMs were free.
#pragma once

#include <chrono>
#include <cstdint>

namespace lnx {

enum class ProfileCategory : uint8_t { none = 0, gemm = 1, kernel = 2 };

struct ProfileTotals {
  double gemm_seconds = 0, kernel_seconds = 0;
  double blas_thread_seconds = 0;  // Σ over threads of the time inside BLAS calls
  double blas_flops = 0;           // Σ of 2·M·N·K over those calls
};

void profile_enable(bool on);
bool profile_enabled();
void profile_reset();
ProfileTotals profile_totals();
void profile_add(ProfileCategory category, double seconds);
void profile_add_blas(double seconds, double flops);
// The category of the outermost scope active on this thread (none outside any scope).
ProfileCategory profile_current();

class ProfileScope {
 public:
  explicit ProfileScope(ProfileCategory category);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  ProfileCategory category_ = ProfileCategory::none;  // none: nested or profiling off
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lnx
