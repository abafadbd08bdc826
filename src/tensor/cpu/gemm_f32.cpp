// f32 GEMM (see gemm_f32.h). Letters: M, N, K the GEMM's sizes; MR × NR the micro-tile (8 rows ×
// 32 columns: 16 accumulators of 16 lanes); KC the depth of one K block; a block is the rows
// [i0, i1) × columns [j0, j1) of C that one task computes.
#include "tensor/cpu/gemm_f32.h"

#include <algorithm>
#include <memory>

#include "tensor/cpu/cpu_features.h"
#include "tensor/cpu/parallel.h"
#include "tensor/profile.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define LNX_HAVE_X86_KERNELS 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports the "undefined" source operands of its own AVX-512 intrinsics (masked loads,
// broadcasts) as uninitialised once they are inlined (GCC bug 105593); a partial tile's stack
// copy also has rows past m that are computed into and never stored.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace lnx {

namespace {

constexpr int64_t kMR = 8, kNR = 32;
// A K block of a block's A rows (64 × 256 floats) and B panels (256 × 256) stays in L2.
constexpr int64_t kKC = 256, kBlockRows = 64, kBlockCols = 256;
// The largest op(B) = Bᵀ packed whole (4 MB): a narrow model's weights and the chunk forms'
// blocks; a large weight stays with OpenBLAS, which packs it a block at a time.
constexpr int64_t kMaxPackedFloats = int64_t{1} << 20;

#if LNX_HAVE_X86_KERNELS
#define LNX_F32_TARGET __attribute__((target("avx512f")))

// op(B) [K, N] as the kernel reads it: the 32 columns of panel p, row k, start at
// data + p · panel_stride + k · ld (B itself when op(B) = B, the packed panels otherwise).
struct PanelView {
  const float* data;
  int64_t ld, panel_stride;
};

__mmask16 lanes_below(int64_t n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? 0 : __mmask16((1u << n) - 1); }

// C[0:m, 0:32] (columns past the masks left alone) = alpha · Σ_k a(r, k) b(k, :) + beta · C,
// where a(r, k) = rows[r][k · a_k_stride] and b(k, :) = b[k · ldb + 0:32]. C is not read when
// beta = 0. Rows past m point at a real row and are not stored. kUnitK: a_k_stride is 1 (op(A) =
// A), known when compiling — a runtime test inside the loop makes GCC keep acc in memory.
template <bool kUnitK, bool kFullPanel>
LNX_F32_TARGET void micro_kernel(const float* const* rows, int64_t a_k_stride, const float* b, int64_t ldb, int64_t kc,
                                 __mmask16 m0, __mmask16 m1, float* c, int64_t ldc, int64_t m, float alpha,
                                 float beta) {
  const float* r[kMR];
  for (int64_t i = 0; i < kMR; ++i) r[i] = rows[i];
  // Two arrays of 8 rather than one of 16: GCC keeps arrays up to 512 bytes in registers.
  __m512 acc0[kMR], acc1[kMR];
  for (int64_t i = 0; i < kMR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = kFullPanel ? _mm512_loadu_ps(b + k * ldb) : _mm512_maskz_loadu_ps(m0, b + k * ldb);
    const __m512 b1 = kFullPanel ? _mm512_loadu_ps(b + k * ldb + 16) : _mm512_maskz_loadu_ps(m1, b + k * ldb + 16);
    const int64_t at = kUnitK ? k : k * a_k_stride;
#pragma GCC unroll 8
    for (int64_t i = 0; i < kMR; ++i) {
      const __m512 ai = _mm512_set1_ps(r[i][at]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  // Every row stored with constant indices (stores that depend on m make GCC keep acc in memory
  // through the loop); a partial tile goes through a stack copy of C's rows first.
  alignas(64) float spare[kMR][kNR];
  float* out = c;
  int64_t ld = ldc;
  if (m < kMR) {
    if (beta != 0.0f)  // C's columns past the masks may be past its end, or another thread's
      for (int64_t i = 0; i < m; ++i) {
        _mm512_store_ps(spare[i], _mm512_maskz_loadu_ps(m0, c + i * ldc));
        _mm512_store_ps(spare[i] + 16, _mm512_maskz_loadu_ps(m1, c + i * ldc + 16));
      }
    out = &spare[0][0];
    ld = kNR;
  }
#pragma GCC unroll 8
  for (int64_t i = 0; i < kMR; ++i) {
    float* row = out + i * ld;
    __m512 r0 = _mm512_mul_ps(acc0[i], va), r1 = _mm512_mul_ps(acc1[i], va);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), r1);
    }
    _mm512_mask_storeu_ps(row, m0, r0);
    _mm512_mask_storeu_ps(row + 16, m1, r1);
  }
  if (m < kMR)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < kNR; ++j)
        if (j < 16 ? (m0 >> j) & 1 : (m1 >> (j - 16)) & 1) c[i * ldc + j] = spare[i][j];
}

// dst[k · ldd + c] = src[c · lds + k] for c, k in [0, 16): a 16 × 16 transpose in registers
// (pairs of rows interleaved, then pairs of pairs, then 128-bit lanes twice).
LNX_F32_TARGET void transpose_16x16(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int i = 0; i < 16; i += 4) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    t[i + 2] = _mm512_unpacklo_ps(r[i + 2], r[i + 3]);
    t[i + 3] = _mm512_unpackhi_ps(r[i + 2], r[i + 3]);
  }
  // r[4i + q], 128-bit lane L: rows 4i … 4i+3 of column 4L + q.
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    t[q] = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88);
    t[4 + q] = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);
    t[8 + q] = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
    t[12 + q] = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
  }
  for (int q = 0; q < 4; ++q) {
    _mm512_storeu_ps(dst + q * ldd, _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88));
    _mm512_storeu_ps(dst + (4 + q) * ldd, _mm512_shuffle_f32x4(t[4 + q], t[12 + q], 0x88));
    _mm512_storeu_ps(dst + (8 + q) * ldd, _mm512_shuffle_f32x4(t[q], t[8 + q], 0xDD));
    _mm512_storeu_ps(dst + (12 + q) * ldd, _mm512_shuffle_f32x4(t[4 + q], t[12 + q], 0xDD));
  }
}

// Panel p of op(B) = Bᵀ (B is [N, K]): dst[k · 32 + c] = B[(32p + c) · ldb + k], columns past N
// zero.
void pack_transposed_panel(const float* B, int64_t ldb, int64_t N, int64_t K, int64_t p, float* dst) {
  const int64_t c0 = p * kNR;
  for (int64_t c = 0; c < kNR; c += 16) {
    const int64_t cols = std::min<int64_t>(16, N - c0 - c);
    int64_t k = 0;
    if (cols == 16)
      for (; k + 16 <= K; k += 16) transpose_16x16(B + (c0 + c) * ldb + k, ldb, dst + k * kNR + c, kNR);
    for (; k < K; ++k)
      for (int64_t j = 0; j < 16; ++j) dst[k * kNR + c + j] = j < cols ? B[(c0 + c + j) * ldb + k] : 0.0f;
  }
}

struct Problem {
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t a_row_stride, a_k_stride;  // op(A)[i, k] = A[i · a_row_stride + k · a_k_stride]
  PanelView b;
  float* C;
  int64_t ldc;
};

// The next micro-tile's rows of A (when op(A) = A: the hardware prefetchers do not follow eight
// rows a leading dimension apart) and of C (so that the stores do not wait for their lines).
void prefetch_next_tile(const Problem& p, int64_t i, int64_t k0, int64_t kc, int64_t j0, int64_t j1) {
  for (int64_t r = 0; r < kMR; ++r) {
    if (p.a_k_stride == 1) {
      const char* a = reinterpret_cast<const char*>(p.A + (i + r) * p.a_row_stride + k0);
      for (int64_t off = 0; off < kc * 4; off += 64) _mm_prefetch(a + off, _MM_HINT_T0);
    }
    if (k0 == 0) {
      const char* c = reinterpret_cast<const char*>(p.C + (i + r) * p.ldc + j0);
      for (int64_t off = 0; off < (j1 - j0) * 4; off += 64) _mm_prefetch(c + off, _MM_HINT_ET0);
    }
  }
}

void run_block(const Problem& p, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const float* rows[kMR];
  for (int64_t k0 = 0; k0 < p.K; k0 += kKC) {
    const int64_t kc = std::min(kKC, p.K - k0);
    const float beta = k0 == 0 ? p.beta : 1.0f;  // later K blocks add to what the first stored
    for (int64_t i = i0; i < i1; i += kMR) {
      const int64_t m = std::min(kMR, p.M - i);
      for (int64_t r = 0; r < kMR; ++r) rows[r] = p.A + (i + std::min(r, m - 1)) * p.a_row_stride + k0 * p.a_k_stride;
      if (i + 2 * kMR <= i1) prefetch_next_tile(p, i + kMR, k0, kc, j0, j1);
      for (int64_t j = j0; j < j1; j += kNR) {
        const __mmask16 m0 = lanes_below(p.N - j), m1 = lanes_below(p.N - j - 16);
        const float* b = p.b.data + (j / kNR) * p.b.panel_stride + k0 * p.b.ld;
        const bool full = p.N - j >= kNR;
        (p.a_k_stride == 1 ? (full ? micro_kernel<true, true> : micro_kernel<true, false>)
                           : (full ? micro_kernel<false, true> : micro_kernel<false, false>))(
            rows, p.a_k_stride, b, p.b.ld, kc, m0, m1, p.C + i * p.ldc + j, p.ldc, m, p.alpha, beta);
      }
    }
  }
}

void gemm_native(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  Problem p{
      M, N,  K, alpha, beta, A, ta == Transpose::Yes ? 1 : lda, ta == Transpose::Yes ? lda : 1, PanelView{B, ldb, kNR},
      C, ldc};
  const int64_t panels = (N + kNR - 1) / kNR;
  // Under about a million multiply-adds a fork and join of the threads costs more than it saves.
  const bool serial = omp_in_parallel() || M * N * K < (int64_t{1} << 20);
  // Packed panels of Bᵀ (at most kMaxPackedFloats: gemm_f32_preferred), reused between calls
  // by each calling thread (kernels call GEMMs from inside their parallel loops); not
  // zero-filled, every element is written by the packing.
  thread_local std::unique_ptr<float[]> packed;
  thread_local int64_t packed_capacity = 0;
  if (tb == Transpose::Yes) {
    const int64_t need = panels * K * kNR;
    if (need > packed_capacity) {
      packed = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(need));
      packed_capacity = need;
    }
    float* dst = packed.get();
    auto pack = [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) pack_transposed_panel(B, ldb, N, K, q, dst + q * K * kNR);
    };
    if (serial)
      pack(0, panels);
    else
      parallel_for(panels, std::max<int64_t>(1, 8192 / std::max<int64_t>(K * kNR, 1)), pack);
    p.b = PanelView{dst, kNR, K * kNR};
  }
  // Blocks small enough that every thread gets several (a product of 64 × 64 outputs over 4096
  // tokens, a weight gradient, is 16 micro-tiles), else 64 rows × 256 columns.
  int64_t block_rows = std::min(kBlockRows, (M + kMR - 1) / kMR * kMR);
  int64_t block_cols = std::min(kBlockCols, panels * kNR);
  const int64_t threads = serial ? 1 : num_threads();
  auto count = [&] { return ((M + block_rows - 1) / block_rows) * ((N + block_cols - 1) / block_cols); };
  while (threads > 1 && count() < 4 * threads && (block_rows > kMR || block_cols > kNR)) {
    if (block_rows >= block_cols / 4 && block_rows > kMR)
      block_rows = std::max(kMR, block_rows / 2 / kMR * kMR);
    else
      block_cols = std::max(kNR, block_cols / 2 / kNR * kNR);
  }
  const int64_t row_blocks = (M + block_rows - 1) / block_rows, col_blocks = (N + block_cols - 1) / block_cols;
  auto run_blocks = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = (t / col_blocks) * block_rows, j0 = (t % col_blocks) * block_cols;
      run_block(p, i0, std::min(M, i0 + block_rows), j0, std::min(N, j0 + block_cols));
    }
  };
  if (serial)
    run_blocks(0, row_blocks * col_blocks);
  else
    parallel_for_dynamic(row_blocks * col_blocks, 1, run_blocks);
}

#endif  // LNX_HAVE_X86_KERNELS

}  // namespace

bool gemm_f32_native() {
#if LNX_HAVE_X86_KERNELS
  return cpu_features().avx512f;
#else
  return false;
#endif
}

bool gemm_f32_preferred(Transpose tb, int64_t M, int64_t N, int64_t K) {
  // Fewer than 16 rows or columns leave most of an 8 × 32 tile's lanes idle (decoding's few
  // rows, a per-head gate's few columns).
  if (!gemm_f32_native() || M < 16 || N < 16) return false;
  if (tb == Transpose::Yes && N * K > kMaxPackedFloats) return false;
  // Up to 64³ OpenBLAS's small-matrix kernels are as fast or faster, except with op(B) = Bᵀ.
  if (M * N * K <= 64 * 64 * 64) return tb == Transpose::Yes;
  return std::min({M, N, K}) <= 256;
}

void gemm_f32(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || !gemm_f32_native()) {
    blas_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#if LNX_HAVE_X86_KERNELS
  if (alpha == 0.0f) {  // as BLAS: A and B are not read (a NaN or inf there does not reach C)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  BlasTimer timer(M, N, K);
  gemm_native(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

}  // namespace lnx
