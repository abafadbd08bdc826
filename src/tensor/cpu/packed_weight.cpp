#include "tensor/cpu/packed_weight.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>

#include "tensor/cpu/blas.h"
#include "tensor/cpu/cpu_features.h"
#include "tensor/cpu/gemm_bf16.h"
#include "tensor/cpu/parallel.h"
#include "tensor/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define LNX_HAVE_X86_KERNELS 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports the "undefined" source operands of its own AVX-512 conversion intrinsics as
// uninitialised once they are inlined (GCC bug 105593); nothing here reads an uninitialised value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace lnx {

namespace {

constexpr int64_t kRowsPerPass = 8;       // rows of x that share one pass over the weight
constexpr int64_t kMaxStreamedRows = 32;  // above: expand to f32 once and use sgemm

float bf16_to_f32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <WeightFormat F> float raw_at(const PackedWeight& w, int64_t o, int64_t i) {
  if constexpr (F == WeightFormat::bf16) return bf16_to_f32(w.bf16[static_cast<size_t>(o * w.cols + i)]);
  return static_cast<float>(w.q[static_cast<size_t>(o * w.cols + i)]);
}

#if LNX_HAVE_X86_KERNELS
#define LNX_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

// 16 weights of row o from column i, as f32 (scale not applied).
template <WeightFormat F> LNX_AVX512_TARGET __m512 load16(const PackedWeight& w, int64_t o, int64_t i) {
  if constexpr (F == WeightFormat::bf16) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.bf16.data() + o * w.cols + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
  } else {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.q.data() + o * w.cols + i));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(raw));
  }
}

// y[m, o] for m < R (≤ kRowsPerPass), o in [o0, o1): each weight row is read once for all R
// rows of x; the products sum in f32, the row's scale applied at the end. R is a template
// argument so that the accumulators live in registers. (Four independent sums per row of x
// and software prefetches of the weight rows were both tried: faster on weights in cache,
// slower on a decoded token's weights streamed from memory, measured A/B.)
template <WeightFormat F, int R>
LNX_AVX512_TARGET void rows_times_weight(const float* x, const PackedWeight& w, int64_t o0, int64_t o1, float* y) {
  const int64_t I = w.cols, O = w.rows;
  for (int64_t o = o0; o < o1; ++o) {
    __m512 acc[R];
    for (int m = 0; m < R; ++m) acc[m] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= I; i += 16) {
      const __m512 wv = load16<F>(w, o, i);
      for (int m = 0; m < R; ++m) acc[m] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + m * I + i), acc[m]);
    }
    const float scale = F == WeightFormat::int8 ? w.scales[static_cast<size_t>(o)] : 1.0f;
    for (int m = 0; m < R; ++m) {
      float s = _mm512_reduce_add_ps(acc[m]);
      for (int64_t k = i; k < I; ++k) s += raw_at<F>(w, o, k) * x[m * I + k];
      y[m * O + o] = s * scale;
    }
  }
}

template <WeightFormat F>
void rows_times_weight(const float* x, int64_t rows, const PackedWeight& w, int64_t o0, int64_t o1, float* y) {
  switch (rows) {
    case 1:
      return rows_times_weight<F, 1>(x, w, o0, o1, y);
    case 2:
      return rows_times_weight<F, 2>(x, w, o0, o1, y);
    case 3:
      return rows_times_weight<F, 3>(x, w, o0, o1, y);
    case 4:
      return rows_times_weight<F, 4>(x, w, o0, o1, y);
    case 5:
      return rows_times_weight<F, 5>(x, w, o0, o1, y);
    case 6:
      return rows_times_weight<F, 6>(x, w, o0, o1, y);
    case 7:
      return rows_times_weight<F, 7>(x, w, o0, o1, y);
    default:
      return rows_times_weight<F, 8>(x, w, o0, o1, y);
  }
}

#endif  // LNX_HAVE_X86_KERNELS

template <WeightFormat F>
void rows_times_weight_portable(const float* x, int64_t rows, const PackedWeight& w, int64_t o0, int64_t o1, float* y) {
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t m = 0; m < rows; ++m) {
      float s = 0;
      for (int64_t k = 0; k < w.cols; ++k) s += raw_at<F>(w, o, k) * x[m * w.cols + k];
      y[m * w.rows + o] = s * (F == WeightFormat::int8 ? w.scales[static_cast<size_t>(o)] : 1.0f);
    }
}

// y_j[M, O_j] = x · W_jᵀ for weights that share x (and so I): their output rows are handed out
// to the threads as one range, so a layer's projections of one input cost one parallel region
// and one pass over their bytes, not one region each with a barrier between.
template <WeightFormat F> void stream_weights(const float* x, int64_t M, const std::vector<const PackedWeight*>& ws,
                                              const std::vector<float*>& ys) {
#if LNX_HAVE_X86_KERNELS
  const bool avx512 = cpu_features().avx512f && cpu_features().avx512bw;
#else
  const bool avx512 = false;
#endif
  const int64_t I = ws.front()->cols;
  int64_t total = 0;
  for (const PackedWeight* w : ws) total += w->rows;
  // Output rows in chunks of at least 64 KB of weights per thread.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(I, 1));
  for (int64_t m0 = 0; m0 < M; m0 += kRowsPerPass) {
    const int64_t rows = std::min(kRowsPerPass, M - m0);
    parallel_for(total, grain, [&](int64_t b, int64_t e) {
      int64_t base = 0;  // the first row of weight j in the joint range
      for (size_t j = 0; j < ws.size(); base += ws[j]->rows, ++j) {
        const PackedWeight& w = *ws[j];
        const int64_t o0 = std::max(b, base) - base, o1 = std::min(e, base + w.rows) - base;
        if (o0 >= o1) continue;
        float* y = ys[j] + m0 * w.rows;
#if LNX_HAVE_X86_KERNELS
        if (avx512) {
          rows_times_weight<F>(x + m0 * I, rows, w, o0, o1, y);
          continue;
        }
#endif
        rows_times_weight_portable<F>(x + m0 * I, rows, w, o0, o1, y);
      }
    });
  }
}

// One weight: streamed up to kMaxStreamedRows rows of x, else expanded once for an sgemm.
void matmul_one(const float* x, int64_t M, const PackedWeight& w, float* y) {
  if (M <= 0 || w.rows == 0) return;
  if (M > kMaxStreamedRows) {
    // A prefill: the weight expanded once (O · I work against M · O · I) and one sgemm.
    std::vector<float> full(static_cast<size_t>(w.rows * w.cols));
    parallel_for(w.rows, 16, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t i = 0; i < w.cols; ++i) full[static_cast<size_t>(o * w.cols + i)] = w.at(o, i);
    });
    blas_sgemm(Transpose::No, Transpose::Yes, M, w.rows, w.cols, 1.0f, x, w.cols, full.data(), w.cols, 0.0f, y, w.rows);
    return;
  }
  if (w.format == WeightFormat::bf16)
    stream_weights<WeightFormat::bf16>(x, M, {&w}, {y});
  else
    stream_weights<WeightFormat::int8>(x, M, {&w}, {y});
}

}  // namespace

void* allocate_weight_bytes(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  const size_t size = (std::max<size_t>(bytes, 1) + align - 1) / align * align;  // aligned_alloc wants a multiple
  void* p = std::aligned_alloc(align, size);
  if (!p) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
  // Advice only (without THP nothing changes), and only for the whole huge pages the weight
  // fills: the rounded-up tail stays in small pages, untouched and so never resident.
  if (align == kHuge) madvise(p, bytes / kHuge * kHuge, MADV_HUGEPAGE);
#endif
  return p;
}

void free_weight_bytes(void* p) noexcept { std::free(p); }

WeightFormat parse_weight_format(const std::string& name) {
  if (name == "f32") return WeightFormat::f32;
  if (name == "bf16") return WeightFormat::bf16;
  if (name == "int8") return WeightFormat::int8;
  throw ValueError(fmt::format("[weights] unknown weight format '{}'; formats are f32, bf16, int8", name));
}

const char* weight_format_name(WeightFormat f) {
  return f == WeightFormat::bf16 ? "bf16" : f == WeightFormat::int8 ? "int8" : "f32";
}

int64_t PackedWeight::bytes() const { return format == WeightFormat::bf16 ? rows * cols * 2 : rows * cols + rows * 4; }

float PackedWeight::at(int64_t o, int64_t i) const {
  if (format == WeightFormat::bf16) return bf16_to_f32(bf16[static_cast<size_t>(o * cols + i)]);
  return static_cast<float>(q[static_cast<size_t>(o * cols + i)]) * scales[static_cast<size_t>(o)];
}

PackedWeight pack_weight(const float* w, int64_t rows, int64_t cols, WeightFormat format) {
  LNX_CHECK(format != WeightFormat::f32, ValueError, "[pack_weight] f32 weights are not packed");
  LNX_CHECK(rows >= 0 && cols >= 0, ShapeError, "[pack_weight] a [{}, {}] weight", rows, cols);
  for (int64_t k = 0; k < rows * cols; ++k)
    LNX_CHECK(std::isfinite(w[k]), ValueError, "[pack_weight] weight element {} (row {}) is {}: not finite", k,
              k / std::max<int64_t>(cols, 1), w[k]);
  PackedWeight p;
  p.format = format;
  p.rows = rows;
  p.cols = cols;
  const size_t n = static_cast<size_t>(rows * cols);
  if (format == WeightFormat::bf16) {
    p.bf16.resize(n);
    for (size_t k = 0; k < n; ++k) {
      const float r = round_to_bf16(w[k]);
      uint32_t u;
      std::memcpy(&u, &r, 4);
      p.bf16[k] = static_cast<uint16_t>(u >> 16);
    }
    return p;
  }
  p.q.resize(n);
  p.scales.resize(static_cast<size_t>(rows));
  for (int64_t o = 0; o < rows; ++o) {
    float absmax = 0;
    for (int64_t i = 0; i < cols; ++i) absmax = std::max(absmax, std::abs(w[o * cols + i]));
    const float scale = absmax > 0 ? absmax / 127.0f : 1.0f;
    p.scales[static_cast<size_t>(o)] = scale;
    for (int64_t i = 0; i < cols; ++i)
      p.q[static_cast<size_t>(o * cols + i)] =
          static_cast<int8_t>(std::clamp(std::nearbyint(w[o * cols + i] / scale), -127.0f, 127.0f));
  }
  return p;
}

#if LNX_HAVE_X86_KERNELS
namespace {
// Sum of x[0:n) with eight independent vector accumulators: loads, not add latency, set the pace.
LNX_AVX512_TARGET float sum_avx512(const float* x, int64_t n) {
  __m512 acc[8];
  for (auto& a : acc) a = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 128 <= n; i += 128)
    for (int k = 0; k < 8; ++k) acc[k] = _mm512_add_ps(acc[k], _mm512_loadu_ps(x + i + 16 * k));
  alignas(64) float lanes[16];
  float s = 0;
  for (auto& a : acc) {
    _mm512_store_ps(lanes, a);
    for (float l : lanes) s += l;
  }
  for (; i < n; ++i) s += x[i];
  return s;
}
}  // namespace
#endif

double measure_read_gbps(int64_t bytes) {
  const int64_t n = bytes / 4;
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);
  const int threads = num_threads();
#if LNX_HAVE_X86_KERNELS
  const bool avx512 = cpu_features().avx512f;
#endif
  std::vector<float> sums(static_cast<size_t>(threads));
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t lo = n * t / threads, hi = n * (t + 1) / threads;
        float s = 0;
#if LNX_HAVE_X86_KERNELS
        if (avx512) {
          sums[static_cast<size_t>(t)] = sum_avx512(buf.data() + lo, hi - lo);
          continue;
        }
#endif
        for (int64_t i = lo; i < hi; ++i) s += buf[static_cast<size_t>(i)];
        sums[static_cast<size_t>(t)] = s;
      }
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::max(best, static_cast<double>(bytes) / sec / 1e9);  // the first touches the pages
  }
  return best;
}

void packed_matmul(const float* x, int64_t M, const PackedWeight& w, float* y) { packed_matmul_group(x, M, {&w}, {y}); }

void packed_matmul_group(const float* x, int64_t M, const std::vector<const PackedWeight*>& ws,
                         const std::vector<float*>& ys) {
  LNX_CHECK(!ws.empty() && ws.size() == ys.size(), ValueError,
            "[packed_matmul] {} weights and {} outputs: expected one output per weight, at least one", ws.size(),
            ys.size());
  bool one_format = true;
  for (const PackedWeight* w : ws) {
    LNX_CHECK(w->cols == ws.front()->cols, ShapeError,
              "[packed_matmul] weights of one group multiply one x: {} columns, then {}", ws.front()->cols, w->cols);
    one_format = one_format && w->format == ws.front()->format;
  }
  if (M <= 0) return;
  if (M > kMaxStreamedRows || !one_format) {
    for (size_t j = 0; j < ws.size(); ++j) matmul_one(x, M, *ws[j], ys[j]);
    return;
  }
  if (ws.front()->format == WeightFormat::bf16)
    stream_weights<WeightFormat::bf16>(x, M, ws, ys);
  else
    stream_weights<WeightFormat::int8>(x, M, ws, ys);
}

}  // namespace lnx
