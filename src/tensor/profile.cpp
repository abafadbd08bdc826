#include "tensor/profile.h"

#include <atomic>

namespace lnx {

namespace {
std::atomic<bool> g_enabled{false};
std::atomic<int64_t> g_ns[3];
std::atomic<int64_t> g_blas_ns{0};
std::atomic<double> g_blas_flops{0.0};
thread_local ProfileCategory t_current = ProfileCategory::none;
}  // namespace

void profile_enable(bool on) { g_enabled.store(on); }
bool profile_enabled() { return g_enabled.load(std::memory_order_relaxed); }

void profile_reset() {
  for (auto& n : g_ns) n.store(0);
  g_blas_ns.store(0);
  g_blas_flops.store(0.0);
}

ProfileTotals profile_totals() {
  return {static_cast<double>(g_ns[1].load()) * 1e-9, static_cast<double>(g_ns[2].load()) * 1e-9,
          static_cast<double>(g_blas_ns.load()) * 1e-9, g_blas_flops.load()};
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

ProfileScope::ProfileScope(ProfileCategory category) {
  if (!profile_enabled() || t_current != ProfileCategory::none || category == ProfileCategory::none) return;
  category_ = category;
  t_current = category;
  start_ = std::chrono::steady_clock::now();
}

ProfileScope::~ProfileScope() {
  if (category_ == ProfileCategory::none) return;
  t_current = ProfileCategory::none;
  profile_add(category_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
}

}  // namespace lnx
