// matmul through the library against raw cblas_sgemm on the same shapes, in the same run.
// Counters: GFLOP/s (2·M·N·K per product) and ratio_to_sgemm (library rate / raw rate of the
// same shape, measured just before by the matching Raw benchmark).
#include <algorithm>

#include "bench_common.h"
#include "tensor/cpu/gemm_bf16.h"
#include "tensor/cpu/gemm_f32.h"
#include "tensor/cpu/packed_weight.h"
#include "tensor/ops.h"

namespace lnx::bench {
namespace {

// Raw sgemm on plain buffers: the ceiling. args: M, N, K, transA, transB.
double raw_seconds(int64_t M, int64_t N, int64_t K, bool ta, bool tb, int reps) {
  std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N);
  auto run = [&] {
    blas_sgemm(ta ? Transpose::Yes : Transpose::No, tb ? Transpose::Yes : Transpose::No, M, N, K, 1.0f, a.data(),
               ta ? M : K, b.data(), tb ? K : N, 0.0f, c.data(), N);
  };
  run();
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

// The counters of a library product timed for `lib_total` seconds over the state's iterations,
// against the raw sgemm of the same shape timed right after it.
void report_against_sgemm(benchmark::State& st, double lib_total) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const double lib = lib_total / static_cast<double>(st.iterations());
  const int reps = static_cast<int>(std::clamp<int64_t>(st.iterations(), 3, 50));
  const double raw = raw_seconds(M, N, K, st.range(3), st.range(4), reps);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["sgemm_GFLOP/s"] = 2.0 * M * N * K / raw / 1e9;
  st.counters["ratio_to_sgemm"] = raw / lib;
}

void BM_RawSgemm(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool ta = st.range(3), tb = st.range(4);
  std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N);
  for (auto _ : st)
    gemm(ta ? Transpose::Yes : Transpose::No, tb ? Transpose::Yes : Transpose::No, M, N, K, 1.0f, a.data(), ta ? M : K,
         b.data(), tb ? K : N, 0.0f, c.data(), N);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// lnx::matmul on tensors (transposed operands are transposed views, not copies). The raw
// sgemm of the same shape is timed right after the library loop, for ratio_to_sgemm.
void BM_Matmul(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool ta = st.range(3), tb = st.range(4);
  Generator g(0);
  Tensor a = ta ? transpose(randn({K, M}, g), 0, 1) : randn({M, K}, g);
  Tensor b = tb ? transpose(randn({N, K}, g), 0, 1) : randn({K, N}, g);
  NoGradGuard no_grad;
  double lib = 0;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(matmul(a, b));
    lib += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report_against_sgemm(st, lib);
}

using GemmFn = void (*)(Transpose, Transpose, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                        int64_t, float, float*, int64_t);

// One of our GEMMs on plain buffers, with ratio_to_sgemm against the raw sgemm of the same shape
// timed right after it.
void run_own_gemm(benchmark::State& st, GemmFn gemm_fn) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool ta = st.range(3), tb = st.range(4);
  std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N);
  double lib = 0;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    gemm_fn(ta ? Transpose::Yes : Transpose::No, tb ? Transpose::Yes : Transpose::No, M, N, K, 1.0f, a.data(),
            ta ? M : K, b.data(), tb ? K : N, 0.0f, c.data(), N);
    lib += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report_against_sgemm(st, lib);
}

// gemm_bf16 (bf16 inner products, f32 sums).
void BM_GemmBf16(benchmark::State& st) {
  run_own_gemm(st, gemm_bf16);
  st.counters["native"] = gemm_bf16_native() ? 1 : 0;
}

// gemm_f32 (our own f32 kernel): where ratio_to_sgemm is above 1, lnx::gemm should choose it
// (gemm_f32_preferred; `preferred` shows what it chooses).
void BM_GemmF32(benchmark::State& st) {
  run_own_gemm(st, gemm_f32);
  st.counters["preferred"] =
      gemm_f32_preferred(st.range(4) ? Transpose::Yes : Transpose::No, st.range(0), st.range(1), st.range(2)) ? 1 : 0;
}

// A product whose operands are not in cache, as in a training step (its activations are far
// larger than L3): 24 sets of A and C (about 100 MB at the default job's shapes) taken in turn.
// args: M, N, K, tA, tB, and 1 for gemm_f32 or 0 for OpenBLAS's sgemm.
void BM_GemmColdOperands(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool ta = st.range(3), tb = st.range(4), own = st.range(5);
  constexpr int kSets = 24;
  std::vector<std::vector<float>> a(kSets, std::vector<float>(M * K, 0.5f)), c(kSets, std::vector<float>(M * N));
  const std::vector<float> b(K * N, 0.25f);
  int i = 0;
  for (auto _ : st) {
    (own ? gemm_f32 : blas_sgemm)(ta ? Transpose::Yes : Transpose::No, tb ? Transpose::Yes : Transpose::No, M, N, K,
                                  1.0f, a[i].data(), ta ? M : K, b.data(), tb ? K : N, 0.0f, c[i].data(), N);
    i = (i + 1) % kSets;
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// Decoding's products: x [M, I] times a packed weight [O, I] (format 0 f32 through sgemm/sgemv,
// 1 bf16, 2 int8). GB/s counts the weight bytes read; ratio_to_read is against the memory read
// bandwidth measured in this run.
void BM_PackedMatmul(benchmark::State& st) {
  const int64_t M = st.range(0), O = st.range(1), I = st.range(2);
  const auto format = static_cast<WeightFormat>(st.range(3));
  Generator g(0);
  const std::vector<float> w = randn({O * I}, g).to_vector<float>();
  const std::vector<float> x = randn({M * I}, g).to_vector<float>();
  std::vector<float> y(static_cast<size_t>(M * O));
  PackedWeight p;
  if (format != WeightFormat::f32) p = pack_weight(w.data(), O, I, format);
  for (auto _ : st) {
    if (format == WeightFormat::f32)
      gemm(Transpose::No, Transpose::Yes, M, O, I, 1.0f, x.data(), I, w.data(), I, 0.0f, y.data(), O);
    else
      packed_matmul(x.data(), M, p, y.data());
  }
  static const double read = measure_read_gbps();
  const double bytes = format == WeightFormat::f32 ? 4.0 * O * I : static_cast<double>(p.bytes());
  st.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["read_GB/s"] = read;
}

void square_shapes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {256, 512, 1024, 2048}) b->Args({n, n, n, 0, 0});
}
// The projections of a small LM (d_model 512, batch 8 × 512 tokens = 4096 rows): forward
// x·W, and the two backward products dX = dY·Wᵀ and dW = Xᵀ·dY.
void projection_shapes(benchmark::internal::Benchmark* b) {
  const int64_t T = 4096, d = 512;
  for (int64_t out : {512, 1536, 2048}) {
    b->Args({T, out, d, 0, 0});  // forward
    b->Args({T, d, out, 0, 1});  // dX = dY · Wᵀ
    b->Args({d, out, T, 1, 0});  // dW = Xᵀ · dY
  }
}

// A narrow model's step (the default job's: width 64, 4096 tokens, projections to 64–256) and
// the products a chunk form makes per chunk and head (32–64 on a side, single-threaded there).
void small_model_shapes(benchmark::internal::Benchmark* b) {
  const int64_t T = 4096, d = 64;
  for (int64_t out : {64, 192, 256}) {
    b->Args({T, out, d, 0, 1});  // forward x · Wᵀ
    b->Args({T, d, out, 0, 0});  // dX = dY · W
    b->Args({out, d, T, 1, 0});  // dW = dYᵀ · X
  }
  for (int64_t n : {32, 64}) {
    b->Args({n, n, 32, 0, 1});
    b->Args({32, n, n, 1, 0});
    b->Args({n, 32, 32, 0, 0});
  }
}

}  // namespace
}  // namespace lnx::bench

BENCHMARK(lnx::bench::BM_RawSgemm)
    ->Apply(lnx::bench::square_shapes)
    ->Apply(lnx::bench::projection_shapes)
    ->ArgNames({"M", "N", "K", "tA", "tB"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(lnx::bench::BM_Matmul)
    ->Apply(lnx::bench::square_shapes)
    ->Apply(lnx::bench::projection_shapes)
    ->ArgNames({"M", "N", "K", "tA", "tB"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(lnx::bench::BM_GemmBf16)
    ->Apply(lnx::bench::square_shapes)
    ->Apply(lnx::bench::projection_shapes)
    ->ArgNames({"M", "N", "K", "tA", "tB"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(lnx::bench::BM_GemmF32)
    ->Apply(lnx::bench::square_shapes)
    ->Apply(lnx::bench::projection_shapes)
    ->Apply(lnx::bench::small_model_shapes)
    ->ArgNames({"M", "N", "K", "tA", "tB"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(lnx::bench::BM_GemmColdOperands)
    ->ArgsProduct({{4096}, {64, 192}, {64}, {0}, {1}, {0, 1}})
    ->ArgsProduct({{4096}, {64}, {192}, {0}, {0}, {0, 1}})
    ->ArgsProduct({{192}, {64}, {4096}, {1}, {0}, {0, 1}})
    ->ArgNames({"M", "N", "K", "tA", "tB", "own"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(lnx::bench::BM_PackedMatmul)
    ->ArgsProduct({{1, 4}, {2048, 50288}, {768}, {0, 1, 2}})
    ->ArgNames({"M", "O", "I", "format"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

LNX_BENCHMARK_MAIN();
