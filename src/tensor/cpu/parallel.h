// Threading. OpenMP runs our loops; OpenBLAS (its OpenMP build) shares the same pool, and a
// BLAS call made inside one of our parallel regions runs single-threaded, so the two never
// oversubscribe the cores. Work is split by ith/nth into contiguous ranges; uneven work is
// handed out in chunks (parallel_for_dynamic).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace lnx {

// The floating-point control mode of the calling thread (on x86, MXCSR: rounding, and the
// flush-to-zero / denormals-are-zero bits). Parallel loops run their workers in the caller's
// mode, so a scope that flushes denormals (FlushDenormals) covers the loops it starts.
class FpMode {
 public:
#if defined(__x86_64__) || defined(__i386__)
  static unsigned current() { return _mm_getcsr(); }
  // Sets mode on this thread while in scope.
  explicit FpMode(unsigned mode) : old_(_mm_getcsr()) {
    if (mode != old_) _mm_setcsr(mode);
  }
  ~FpMode() {
    if (_mm_getcsr() != old_) _mm_setcsr(old_);
  }

 private:
  unsigned old_;
#else
  static unsigned current() { return 0; }
  explicit FpMode(unsigned) {}
#endif
 public:
  FpMode(const FpMode&) = delete;
  FpMode& operator=(const FpMode&) = delete;
};

// Flush-to-zero and denormals-are-zero on this thread (and the parallel loops it starts) while
// in scope. Fused kernels run in it: strongly negative log gates make products far below the
// normal range, where arithmetic is slow, and values below ~1e-38 do not matter next to the
// O(1) terms they are summed with.
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(__i386__)
  FlushDenormals() : mode_(FpMode::current() | 0x8040u) {}

 private:
  FpMode mode_;
#endif
 public:
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
};

// Threads our loops and BLAS use; starts from OMP_NUM_THREADS (or all cores).
int num_threads();
// Sets the thread count for our loops and for BLAS.
void set_num_threads(int n);

// An exception may not leave an OpenMP region (the runtime would terminate the program), so
// the drivers catch the first one a worker throws and rethrow it after the region.
class ParallelErrors {
 public:
  template <typename F> void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mu_;
  std::exception_ptr error_;
};

// f(begin, end) over [0, n) split into at most num_threads() contiguous ranges of at least
// grain items each. Serial when n <= grain or already inside a parallel region.
template <typename F> void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  int64_t max_parts = grain > 0 ? (n + grain - 1) / grain : n;
  int nt = static_cast<int>(std::min<int64_t>(num_threads(), max_parts));
  if (nt <= 1 || omp_in_parallel()) {
    f(int64_t(0), n);
    return;
  }
  ParallelErrors errors;
  const unsigned mode = FpMode::current();
#pragma omp parallel num_threads(nt)
  {
    FpMode in_caller_mode(mode);
    int64_t ith = omp_get_thread_num(), nth = omp_get_num_threads();
    int64_t chunk = (n + nth - 1) / nth;
    int64_t begin = std::min(n, ith * chunk), end = std::min(n, begin + chunk);
    if (begin < end) errors.run([&] { f(begin, end); });
  }
  errors.rethrow();
}

// f(begin, end) over [0, n) in chunks of `chunk` items taken by whichever thread is free:
// for items of uneven cost.
template <typename F> void parallel_for_dynamic(int64_t n, int64_t chunk, F&& f) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(chunk, 1);
  int64_t nchunks = (n + chunk - 1) / chunk;
  int nt = static_cast<int>(std::min<int64_t>(num_threads(), nchunks));
  if (nt <= 1 || omp_in_parallel()) {
    f(int64_t(0), n);
    return;
  }
  ParallelErrors errors;
  const unsigned mode = FpMode::current();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t c = 0; c < nchunks; ++c)
    errors.run([&] {
      FpMode in_caller_mode(mode);
      f(c * chunk, std::min(n, (c + 1) * chunk));
    });
  errors.rethrow();
}

// f(begin, end) over [0, n) split into at most num_threads() contiguous ranges of about equal
// total weight (weight(i) ≥ 0: item i's cost): for loops that must keep contiguous ranges (a
// thread walks its items together) but whose items cost unevenly.
template <typename W, typename F> void parallel_for_weighted(int64_t n, W&& weight, F&& f) {
  if (n <= 0) return;
  int nt = static_cast<int>(std::min<int64_t>(num_threads(), n));
  if (nt <= 1 || omp_in_parallel()) {
    f(int64_t(0), n);
    return;
  }
  std::vector<double> prefix(static_cast<size_t>(n + 1), 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + static_cast<double>(weight(i));
  // Range t of nth starts at the first item whose prefix reaches t/nth of the total. The ranges
  // are formed from the team OpenMP actually gives (it may give fewer threads than asked for),
  // so every item is covered.
  auto bound = [&](int64_t t, int64_t nth) -> int64_t {
    if (t <= 0) return 0;
    if (t >= nth) return n;
    const double target = prefix[n] * static_cast<double>(t) / static_cast<double>(nth);
    return std::lower_bound(prefix.begin() + 1, prefix.end(), target) - prefix.begin();
  };
  ParallelErrors errors;
  const unsigned mode = FpMode::current();
#pragma omp parallel num_threads(nt)
  {
    FpMode in_caller_mode(mode);
    const int64_t ith = omp_get_thread_num(), nth = omp_get_num_threads();
    const int64_t begin = bound(ith, nth), end = std::max(begin, bound(ith + 1, nth));
    if (begin < end) errors.run([&] { f(begin, end); });
  }
  errors.rethrow();
}

}  // namespace lnx
