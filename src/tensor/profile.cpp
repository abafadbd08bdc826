#include "tensor/profile.h"

#include <atomic>
#include <chrono>

namespace lnx {

namespace {
constexpr int kCategories = 7;
std::atomic<bool> g_enabled{false};
std::atomic<int64_t> g_ns[kCategories];
std::atomic<int64_t> g_blas_ns{0};
std::atomic<double> g_blas_flops{0.0};
thread_local ProfileCategory t_current = ProfileCategory::none;
thread_local std::chrono::steady_clock::time_point t_start;  // when t_current's time last (re)started
thread_local bool t_profiling_thread = false;

using Clock = std::chrono::steady_clock;

void add_ns(ProfileCategory c, Clock::duration d) {
  g_ns[static_cast<int>(c)].fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(),
                                      std::memory_order_relaxed);
}

// Categories that keep everything run inside them.
bool keeps_inner(ProfileCategory c) {
  return c == ProfileCategory::gemm || c == ProfileCategory::kernel || c == ProfileCategory::optimizer;
}
}  // namespace

void profile_enable(bool on) {
  t_profiling_thread = on;
  g_enabled.store(on);
}
bool profile_enabled() { return g_enabled.load(std::memory_order_relaxed); }

void profile_reset() {
  for (auto& n : g_ns) n.store(0);
  g_blas_ns.store(0);
  g_blas_flops.store(0.0);
}

ProfileTotals profile_totals() {
  auto s = [](ProfileCategory c) { return static_cast<double>(g_ns[static_cast<int>(c)].load()) * 1e-9; };
  ProfileTotals t;
  t.gemm_seconds = s(ProfileCategory::gemm);
  t.kernel_seconds = s(ProfileCategory::kernel);
  t.optimizer_seconds = s(ProfileCategory::optimizer);
  t.autodiff_seconds = s(ProfileCategory::autodiff);
  t.allocation_seconds = s(ProfileCategory::allocation);
  t.other_seconds = s(ProfileCategory::other);
  t.blas_thread_seconds = static_cast<double>(g_blas_ns.load()) * 1e-9;
  t.blas_flops = g_blas_flops.load();
  return t;
}

void profile_add(ProfileCategory category, double seconds) {
  g_ns[static_cast<int>(category)].fetch_add(static_cast<int64_t>(seconds * 1e9));
}

void profile_add_blas(double seconds, double flops) {
  g_blas_ns.fetch_add(static_cast<int64_t>(seconds * 1e9));
  double f = g_blas_flops.load(std::memory_order_relaxed);
  while (!g_blas_flops.compare_exchange_weak(f, f + flops, std::memory_order_relaxed)) {
  }
}

ProfileCategory profile_current() { return t_current; }

BlasTimer::BlasTimer(int64_t M, int64_t N, int64_t K)
    : on_(profile_enabled()), flops_(2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K)) {
  if (on_) start_ = Clock::now();
}

BlasTimer::~BlasTimer() {
  if (on_) profile_add_blas(std::chrono::duration<double>(Clock::now() - start_).count(), flops_);
}

ProfileScope::ProfileScope(ProfileCategory category) {
  if (!profile_enabled() || category == ProfileCategory::none) return;
  if (category == ProfileCategory::allocation) {
    if (!t_profiling_thread) return;
  } else if (keeps_inner(t_current)) {
    return;
  }
  const Clock::time_point now = Clock::now();
  paused_ = t_current;
  if (paused_ != ProfileCategory::none) add_ns(paused_, now - t_start);
  category_ = category;
  t_current = category;
  t_start = now;
}

ProfileScope::~ProfileScope() {
  if (category_ == ProfileCategory::none) return;
  const Clock::time_point now = Clock::now();
  add_ns(category_, now - t_start);
  t_current = paused_;
  t_start = now;  // the paused scope's time runs again
}

}  // namespace lnx
