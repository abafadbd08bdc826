// Elementwise, reduction and row ops on large contiguous f32 tensors (64 MiB, past the L3
// cache), reported in GB/s of compulsory traffic (bytes read + bytes written) and as a ratio
// to a parallel memcpy of the same size run alternately with it (best of each).
#include <algorithm>
#include <functional>

#include "bench_common.h"
#include "tensor/ops.h"

namespace lnx::bench {
namespace {

constexpr int64_t kRows = 4096, kCols = 4096;  // 16M floats = 64 MiB
constexpr double kBytes = 4.0 * kRows * kCols;

// One parallel memcpy of kBytes: the ceiling.
void parallel_copy(std::vector<char>& dst, const std::vector<char>& src) {
#pragma omp parallel
  {
    size_t nt = omp_get_num_threads(), it = omp_get_thread_num(), n = src.size();
    size_t chunk = (n + nt - 1) / nt, b = std::min(n, it * chunk), e = std::min(n, b + chunk);
    std::memcpy(dst.data() + b, src.data() + b, e - b);
  }
}

// op on x (and y); `traffic` = how many tensor-sizes of memory the op must move.
// Each iteration runs the op and then one memcpy of the same size; the counters are the
// best op rate, the best memcpy rate and their ratio. Interleaving matters: the memory
// bandwidth of these (shared) machines changes between modes over seconds, and a ceiling
// measured at another moment would make the ratio meaningless.
void run_op(benchmark::State& st, double traffic, const std::function<Tensor(const Tensor&, const Tensor&)>& op) {
  Generator g(0);
  Tensor x = randn({kRows, kCols}, g), y = randn({kRows, kCols}, g);
  static std::vector<char> src(static_cast<size_t>(kBytes), 1), dst(static_cast<size_t>(kBytes), 0);
  NoGradGuard no_grad;
  benchmark::DoNotOptimize(op(x, y));  // warm the allocator cache
  double best_op = 1e30, best_copy = 1e30;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(op(x, y));
    auto t1 = std::chrono::steady_clock::now();
    parallel_copy(dst, src);
    benchmark::ClobberMemory();
    auto t2 = std::chrono::steady_clock::now();
    best_op = std::min(best_op, std::chrono::duration<double>(t1 - t0).count());
    best_copy = std::min(best_copy, std::chrono::duration<double>(t2 - t1).count());
  }
  const double op_gbps = traffic * kBytes / best_op / 1e9;
  const double copy_gbps = 2 * kBytes / best_copy / 1e9;
  st.counters["GB/s"] = op_gbps;
  st.counters["copy_GB/s"] = copy_gbps;
  st.counters["ratio_to_copy"] = op_gbps / copy_gbps;
}

void BM_Copy(benchmark::State& st) {  // the ceiling itself, as a row of the table
  std::vector<char> src(static_cast<size_t>(kBytes), 1), dst(static_cast<size_t>(kBytes));
  for (auto _ : st) {
    parallel_copy(dst, src);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(2 * kBytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Clone(benchmark::State& st) {
  run_op(st, 2, [](const Tensor& x, const Tensor&) { return clone(x); });
}
void BM_Add(benchmark::State& st) {
  run_op(st, 3, [](const Tensor& x, const Tensor& y) { return add(x, y); });
}
void BM_MulScalar(benchmark::State& st) {
  run_op(st, 2, [](const Tensor& x, const Tensor&) { return mul(x, 1.5); });
}
void BM_AddRowBroadcast(benchmark::State& st) {
  Tensor bias = ones({kCols});
  run_op(st, 2, [bias](const Tensor& x, const Tensor&) { return add(x, bias); });
}
void BM_Exp(benchmark::State& st) {
  run_op(st, 2, [](const Tensor& x, const Tensor&) { return exp(x); });
}
void BM_Silu(benchmark::State& st) {
  run_op(st, 2, [](const Tensor& x, const Tensor&) { return silu(x); });
}
// SwiGLU's gating, fused (3 tensor-sizes of traffic) against silu then mul (the same
// traffic counted, so the ratio shows what the extra pass costs).
void BM_Swiglu(benchmark::State& st) {
  run_op(st, 3, [](const Tensor& x, const Tensor& y) { return swiglu(x, y); });
}
void BM_SiluThenMul(benchmark::State& st) {
  run_op(st, 3, [](const Tensor& x, const Tensor& y) { return mul(silu(x), y); });
}
void BM_Transpose2D(benchmark::State& st) {
  run_op(st, 2, [](const Tensor& x, const Tensor&) { return contiguous(transpose(x, 0, 1)); });
}
void BM_SumAll(benchmark::State& st) {
  run_op(st, 1, [](const Tensor& x, const Tensor&) { return sum(x); });
}
void BM_SumRows(benchmark::State& st) {
  run_op(st, 1, [](const Tensor& x, const Tensor&) { return sum(x, {-1}); });
}
void BM_SumCols(benchmark::State& st) {
  run_op(st, 1, [](const Tensor& x, const Tensor&) { return sum(x, {0}); });
}
void BM_Softmax(benchmark::State& st) {
  run_op(st, 2, [](const Tensor& x, const Tensor&) { return softmax(x, -1); });
}
void BM_RmsNorm(benchmark::State& st) {
  Tensor w = ones({kCols});
  run_op(st, 2, [w](const Tensor& x, const Tensor&) { return rms_norm(x, w); });
}

}  // namespace
}  // namespace lnx::bench

#define LNX_ELEMENTWISE(fn) BENCHMARK(lnx::bench::fn)->UseRealTime()->Unit(benchmark::kMillisecond)
LNX_ELEMENTWISE(BM_Copy);
LNX_ELEMENTWISE(BM_Clone);
LNX_ELEMENTWISE(BM_Add);
LNX_ELEMENTWISE(BM_MulScalar);
LNX_ELEMENTWISE(BM_AddRowBroadcast);
LNX_ELEMENTWISE(BM_Exp);
LNX_ELEMENTWISE(BM_Silu);
LNX_ELEMENTWISE(BM_Swiglu);
LNX_ELEMENTWISE(BM_SiluThenMul);
LNX_ELEMENTWISE(BM_Transpose2D);
LNX_ELEMENTWISE(BM_SumAll);
LNX_ELEMENTWISE(BM_SumRows);
LNX_ELEMENTWISE(BM_SumCols);
LNX_ELEMENTWISE(BM_Softmax);
LNX_ELEMENTWISE(BM_RmsNorm);

LNX_BENCHMARK_MAIN();
