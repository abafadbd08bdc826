// bf16 GEMM (see gemm_bf16.h). Letters: M, N, K the GEMM's sizes, Kp = ⌈K/2⌉ bf16 pairs,
// MR × NR the micro-tile (8 rows × 32 columns: 16 accumulators of 16 f32 lanes).
#include "tensor/cpu/gemm_bf16.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "tensor/cpu/cpu_features.h"
#include "tensor/cpu/parallel.h"
#include "tensor/profile.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define LNX_HAVE_X86_KERNELS 1
#endif

namespace lnx {

namespace {

constexpr int64_t kMR = 8, kNR = 32;
constexpr int64_t kTileRows = 128, kTileCols = 128;  // a tile's A and B panels fit L2 for K up to about 1000

uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

uint32_t pair_bits(float lo, float hi) {
  return static_cast<uint32_t>(bf16_bits(lo)) | (static_cast<uint32_t>(bf16_bits(hi)) << 16);
}

// op(X)[r, k] of a row-major matrix X with leading dimension ld.
struct Operand {
  const float* data;
  int64_t ld;
  bool transposed;  // op(X) = Xᵀ
  int64_t rows, cols;
  float at(int64_t r, int64_t k) const {
    if (r >= rows || k >= cols) return 0.0f;
    return transposed ? data[k * ld + r] : data[r * ld + k];
  }
};

#if LNX_HAVE_X86_KERNELS
#define LNX_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Pairs (k, k+1) of op(X)'s row r for k = 2p, p in [p0, p1): when the row is contiguous in
// memory (op = identity), 32 floats become 16 pairs in one conversion.
// 16 packed pairs to dst[0], dst[stride], …, dst[15·stride].
LNX_BF16_TARGET void store_pairs(__m512i bits, uint32_t* dst, int64_t stride) {
  if (stride == 1) {
    _mm512_storeu_si512(dst, bits);
    return;
  }
  alignas(64) uint32_t tmp[16];
  _mm512_store_si512(tmp, bits);
  for (int t = 0; t < 16; ++t) dst[t * stride] = tmp[t];
}

LNX_BF16_TARGET void pack_row_pairs(const Operand& x, int64_t r, int64_t p0, int64_t p1, uint32_t* dst,
                                    int64_t stride) {
  int64_t p = p0;
  if (!x.transposed && r < x.rows) {
    const float* row = x.data + r * x.ld;
    for (; p + 16 <= p1 && 2 * p + 32 <= x.cols; p += 16) {
      const __m512 lo = _mm512_loadu_ps(row + 2 * p), hi = _mm512_loadu_ps(row + 2 * p + 16);
      store_pairs(reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)), dst + (p - p0) * stride, stride);
    }
  }
  for (; p < p1; ++p) dst[(p - p0) * stride] = pair_bits(x.at(r, 2 * p), x.at(r, 2 * p + 1));
}

// Pairs at k = 2p of op(X)'s rows r in [r0, r1): when op(X) = Xᵀ those rows are contiguous in
// X's rows 2p and 2p+1, and 16 of them are interleaved into 16 pairs at once.
LNX_BF16_TARGET void pack_pair_across_rows(const Operand& x, int64_t p, int64_t r0, int64_t r1, uint32_t* dst,
                                           int64_t stride) {
  int64_t r = r0;
  if (x.transposed && 2 * p + 1 < x.cols) {
    const float* k0 = x.data + (2 * p) * x.ld;
    const float* k1 = k0 + x.ld;
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                                6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (; r + 16 <= r1 && r + 16 <= x.rows; r += 16) {
      const __m512 lo = _mm512_loadu_ps(k0 + r), hi = _mm512_loadu_ps(k1 + r);
      store_pairs(_mm512_permutexvar_epi16(interleave, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo))),
                  dst + (r - r0) * stride, stride);
    }
  }
  for (; r < r1; ++r) dst[(r - r0) * stride] = pair_bits(x.at(r, 2 * p), x.at(r, 2 * p + 1));
}

// Two A micro-panels: rows [r0, r0 + 2·MR) of op(A), each panel [MR][Kp] (two at once so that a
// transposed A is read 16 contiguous rows at a time).
void pack_a_panels(const Operand& a, int64_t r0, int64_t Kp, uint32_t* dst) {
  if (a.transposed) {
    uint32_t pairs[2 * kMR];
    for (int64_t p = 0; p < Kp; ++p) {
      pack_pair_across_rows(a, p, r0, r0 + 2 * kMR, pairs, 1);
      for (int64_t i = 0; i < 2 * kMR; ++i) dst[(i / kMR) * kMR * Kp + (i % kMR) * Kp + p] = pairs[i];
    }
  } else {
    for (int64_t i = 0; i < 2 * kMR; ++i) pack_row_pairs(a, r0 + i, 0, Kp, dst + i * Kp, 1);
  }
}

// A B micro-panel: columns [c0, c0 + NR) of op(B), [Kp][NR]. op(B)'s column c is row c of
// Bᵀ, so B is packed as the operand Bᵀ (N × K).
void pack_b_panel(const Operand& bt, int64_t c0, int64_t Kp, uint32_t* dst) {
  if (bt.transposed) {
    for (int64_t p = 0; p < Kp; ++p) pack_pair_across_rows(bt, p, c0, c0 + kNR, dst + p * kNR, 1);
  } else {
    for (int64_t j = 0; j < kNR; ++j) pack_row_pairs(bt, c0 + j, 0, Kp, dst + j, kNR);
  }
}

// C[0:m, 0:n] = alpha · (a-panel · b-panel) + beta · C (C not read when beta = 0).
LNX_BF16_TARGET void micro_kernel(int64_t Kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc, int64_t m,
                                  int64_t n, float alpha, float beta) {
  __m512 acc[kMR][2];
  for (auto& row : acc) row[0] = row[1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < Kp; ++p) {
    const __m512bh b0 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + p * kNR));
    const __m512bh b1 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + p * kNR + 16));
#pragma GCC unroll 8
    for (int64_t i = 0; i < kMR; ++i) {
      const __m512bh ai = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a[i * Kp + p])));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
  }
  const __mmask16 m0 = n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? __mmask16(0xffff) : n <= 16 ? __mmask16(0) : __mmask16((1u << (n - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(acc[i][0], va), r1 = _mm512_mul_ps(acc[i][1], va);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), r1);
    }
    _mm512_mask_storeu_ps(row, m0, r0);
    _mm512_mask_storeu_ps(row + 16, m1, r1);
  }
}

#endif  // LNX_HAVE_X86_KERNELS

// Without AVX512_BF16: the operands rounded to bf16, then sgemm.
void gemm_rounded_sgemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t a_rows = ta == Transpose::Yes ? K : M, a_cols = ta == Transpose::Yes ? M : K;
  const int64_t b_rows = tb == Transpose::Yes ? N : K, b_cols = tb == Transpose::Yes ? K : N;
  std::vector<float> a(static_cast<size_t>(a_rows * a_cols)), b(static_cast<size_t>(b_rows * b_cols));
  for (int64_t r = 0; r < a_rows; ++r)
    for (int64_t k = 0; k < a_cols; ++k) a[static_cast<size_t>(r * a_cols + k)] = round_to_bf16(A[r * lda + k]);
  for (int64_t r = 0; r < b_rows; ++r)
    for (int64_t k = 0; k < b_cols; ++k) b[static_cast<size_t>(r * b_cols + k)] = round_to_bf16(B[r * ldb + k]);
  blas_sgemm(ta, tb, M, N, K, alpha, a.data(), a_cols, b.data(), b_cols, beta, C, ldc);
}

#if LNX_HAVE_X86_KERNELS
// 12 independent accumulator chains per thread (more than latency × throughput), `iters` rounds.
template <bool kBf16> float peak_loop(int64_t iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(1e-3f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
  const __m512bh ab = reinterpret_cast<__m512bh>(_mm512_set1_epi16(0x3f80));  // bf16 1.0
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = kBf16 ? _mm512_dpbf16_ps(acc[i], ab, ab) : _mm512_fmadd_ps(a, acc[i], b);
  }
  alignas(64) float lanes[16];
  float s = 0;
  for (auto& v : acc) {
    _mm512_store_ps(lanes, v);  // (GCC 12's _mm512_reduce_add_ps warns about its own internals)
    for (float x : lanes) s += x;
  }
  return s;
}

// Each instantiation compiled for what it runs: the f32 loop must not need AVX512_BF16.
__attribute__((target("avx512f"))) float peak_loop_f32(int64_t iters) { return peak_loop<false>(iters); }
LNX_BF16_TARGET float peak_loop_bf16(int64_t iters) { return peak_loop<true>(iters); }
#endif  // LNX_HAVE_X86_KERNELS

}  // namespace

double measure_peak_gflops(bool bf16) {
#if LNX_HAVE_X86_KERNELS
  if (bf16 ? !gemm_bf16_native() : !cpu_features().avx512f) return 0.0;
  constexpr int64_t kIters = 4000000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const int threads = num_threads();
    std::vector<float> sink(static_cast<size_t>(threads));
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t)
        sink[static_cast<size_t>(t)] = bf16 ? peak_loop_bf16(kIters) : peak_loop_f32(kIters);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(threads) * kIters * 12.0 * (bf16 ? 64.0 : 32.0) / s / 1e9);
  }
  return best;
#else
  (void)bf16;
  return 0.0;
#endif
}

float round_to_bf16(float x) {
  const uint32_t u = static_cast<uint32_t>(bf16_bits(x)) << 16;
  float y;
  std::memcpy(&y, &u, 4);
  return y;
}

bool gemm_bf16_native() {
#if LNX_HAVE_X86_KERNELS
  return cpu_features().avx512_bf16 && cpu_features().avx512bw;
#else
  return false;
#endif
}

void gemm_bf16(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || !gemm_bf16_native()) {
    gemm_rounded_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#if LNX_HAVE_X86_KERNELS
  BlasTimer timer(M, N, K);
  const int64_t Kp = (K + 1) / 2, a_pairs = (M + 2 * kMR - 1) / (2 * kMR), b_panels = (N + kNR - 1) / kNR;
  // Packed operands, reused between calls by each calling thread (kernels call GEMMs from
  // inside their parallel loops).
  thread_local std::vector<uint32_t> a_packed, b_packed;
  a_packed.resize(static_cast<size_t>(a_pairs * 2 * kMR * Kp));
  b_packed.resize(static_cast<size_t>(b_panels * kNR * Kp));
  const Operand a{A, lda, ta == Transpose::Yes, M, K};
  const Operand bt{B, ldb, tb == Transpose::No, N, K};  // Bᵀ: N × K
  uint32_t* ap = a_packed.data();
  uint32_t* bp = b_packed.data();
  const int64_t per_panel = std::max<int64_t>(1, 16384 / std::max<int64_t>(Kp * kMR, 1));
  parallel_for(a_pairs, per_panel, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) pack_a_panels(a, i * 2 * kMR, Kp, ap + i * 2 * kMR * Kp);
  });
  parallel_for(b_panels, per_panel, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) pack_b_panel(bt, j * kNR, Kp, bp + j * kNR * Kp);
  });
  // Tiles of kTileRows × kTileCols, handed out dynamically; in a tile, each B micro-panel
  // meets every A micro-panel while it is in cache.
  const int64_t tile_rows = (M + kTileRows - 1) / kTileRows, tile_cols = (N + kTileCols - 1) / kTileCols;
  parallel_for_dynamic(tile_rows * tile_cols, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = (t / tile_cols) * kTileRows, j0 = (t % tile_cols) * kTileCols;
      for (int64_t j = j0; j < std::min(N, j0 + kTileCols); j += kNR)
        for (int64_t i = i0; i < std::min(M, i0 + kTileRows); i += kMR)
          micro_kernel(Kp, ap + (i / kMR) * kMR * Kp, bp + (j / kNR) * kNR * Kp, C + i * ldc + j, ldc,
                       std::min(kMR, M - i), std::min(kNR, N - j), alpha, beta);
    }
  });
  constexpr size_t kKeepBytes = size_t{64} << 20;  // larger packing buffers are handed back
  if (a_packed.capacity() * 4 > kKeepBytes) std::vector<uint32_t>().swap(a_packed);
  if (b_packed.capacity() * 4 > kKeepBytes) std::vector<uint32_t>().swap(b_packed);
#endif
}

}  // namespace lnx
