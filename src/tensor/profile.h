// A coarse time profile for benchmarks: where the wall time of a training step goes. Off unless
// enabled; then scopes on the calling thread add their wall time to a category:
//   gemm       matmul ops (projections, MLPs, LM head), forward and backward
//   kernel     mechanism kernels (kernels::run), forward and backward
//   optimizer  gradient clipping, the optimizer's update, zeroing the gradients
//   autodiff   the backward engine's own work: ordering the graph, summing gradients that meet
//              at a tensor, filling missing ones with zeros (its vjp calls are not counted)
//   allocation taking tensor storage from the allocator
//   other      vjps of the remaining ops (elementwise, norms, loss, …)
// gemm, kernel and optimizer keep what runs inside them (a reference kernel's matmuls count for
// the kernel, Muon's for the optimizer); autodiff and other are paused by a scope opened inside
// them, and allocation pauses whatever scope is open, so the categories never overlap. Time
// outside every scope (forward elementwise ops, embedding, loss) is "the rest" of a step.
// Allocation is counted on the thread that enabled profiling only (worker threads' allocations
// sit inside a scope of that thread already).
// Separately, every BLAS call (lnx::gemm) adds its FLOPs (2·M·N·K) to blas_flops and its wall
// time to blas_thread_seconds, summed over the threads that made the calls: inside a kernel's
// parallel loop, blas_thread_seconds divided by the thread count is how long the kernel would
// take if everything but its GEMMs were free.
#pragma once

#include <chrono>
#include <cstdint>

namespace lnx {

enum class ProfileCategory : uint8_t { none = 0, gemm, kernel, optimizer, autodiff, allocation, other };

struct ProfileTotals {
  double gemm_seconds = 0, kernel_seconds = 0, optimizer_seconds = 0, autodiff_seconds = 0;
  double allocation_seconds = 0, other_seconds = 0;
  double blas_thread_seconds = 0;  // Σ over threads of the time inside BLAS calls
  double blas_flops = 0;           // Σ of 2·M·N·K over those calls
  // Every category's seconds (not the BLAS counters).
  double categorised_seconds() const {
    return gemm_seconds + kernel_seconds + optimizer_seconds + autodiff_seconds + allocation_seconds + other_seconds;
  }
};

// Enabling makes the calling thread the one whose allocations are counted.
void profile_enable(bool on);
bool profile_enabled();
void profile_reset();
ProfileTotals profile_totals();
void profile_add(ProfileCategory category, double seconds);
void profile_add_blas(double seconds, double flops);
// The category of the scope whose time is running on this thread (none outside any scope).
ProfileCategory profile_current();

// Adds a GEMM call's wall time and FLOPs (2·M·N·K) to the BLAS totals when profiling is on.
class BlasTimer {
 public:
  BlasTimer(int64_t M, int64_t N, int64_t K);
  ~BlasTimer();
  BlasTimer(const BlasTimer&) = delete;
  BlasTimer& operator=(const BlasTimer&) = delete;

 private:
  bool on_;
  double flops_;
  std::chrono::steady_clock::time_point start_;
};

// Profiling on (totals reset) for a scope, off again when it ends, an exception included.
class ProfileSession {
 public:
  ProfileSession() {
    profile_reset();
    profile_enable(true);
  }
  ~ProfileSession() { profile_enable(false); }
  ProfileSession(const ProfileSession&) = delete;
  ProfileSession& operator=(const ProfileSession&) = delete;
};

class ProfileScope {
 public:
  explicit ProfileScope(ProfileCategory category);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  ProfileCategory category_ = ProfileCategory::none;  // none: kept by an outer scope, or profiling off
  ProfileCategory paused_ = ProfileCategory::none;    // the scope this one paused
};

}  // namespace lnx
