// Shared by the benchmarks: the ceilings every result is reported against, measured in the
// same run (DESIGN.md §9), and a main that prints the machine context first.
#pragma once

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "tensor/cpu/blas.h"
#include "tensor/cpu/cpu_features.h"
#include "tensor/cpu/parallel.h"

namespace lnx::bench {

// Best-of-n seconds of f().
template <typename F> double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Raw cblas_sgemm rate (GFLOP/s) at M=N=K=n on plain buffers, all threads.
inline double sgemm_gflops(int64_t n) { return measure_sgemm_gflops(n); }

// The ceiling a benchmark binary reports against: sgemm at 1024³, measured once per run
// (at first use, before the cases when add_sgemm_context is called from main).
inline double sgemm_ceiling() {
  static const double g = sgemm_gflops(1024);
  return g;
}

// Copy bandwidth (GB/s, bytes read + written) of a parallel memcpy of `bytes`, all threads.
inline double copy_gbps(size_t bytes) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  auto run = [&] {
#pragma omp parallel
    {
      size_t nt = omp_get_num_threads(), it = omp_get_thread_num();
      size_t chunk = (bytes + nt - 1) / nt, b = std::min(bytes, it * chunk), e = std::min(bytes, b + chunk);
      std::memcpy(dst.data() + b, src.data() + b, e - b);
    }
  };
  run();
  double s = best_seconds(10, run);
  return 2.0 * bytes / s / 1e9;
}

inline void add_context() {
  const auto& b = blas_info();
  benchmark::AddCustomContext("blas", b.library + " core=" + b.core);
  benchmark::AddCustomContext("threads", std::to_string(num_threads()));
  benchmark::AddCustomContext("avx512", cpu_features().avx512f ? "yes" : "no");
}

inline void add_sgemm_context() {
  benchmark::AddCustomContext("sgemm_1024_GFLOP/s", fmt::format("{:.0f}", sgemm_ceiling()));
}

}  // namespace lnx::bench

#define LNX_BENCHMARK_MAIN()                                          \
  int main(int argc, char** argv) {                                   \
    benchmark::Initialize(&argc, argv);                               \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    lnx::bench::add_context();                                        \
    benchmark::RunSpecifiedBenchmarks();                              \
    benchmark::Shutdown();                                            \
    return 0;                                                         \
  }
