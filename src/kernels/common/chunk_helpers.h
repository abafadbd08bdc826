// Small helpers the chunk kernels share: a GEMM call taking transposes as flags, a
// vectorised dot product, and where each sequence's chunks start in per-chunk saved buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/common/layout.h"
#include "tensor/cpu/blas.h"

namespace lnx::kernels {

// Row-major C[M,N] = alpha · op(A) · op(B) + beta · C with op = transpose when ta / tb.
template <typename T>
void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
        const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm(ta ? Transpose::Yes : Transpose::No, tb ? Transpose::Yes : Transpose::No, M, N, K, alpha, A,
       lda, B, ldb, beta, C, ldc);
}

template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Chunk offsets: sequence n's chunks are rows cc[n] .. cc[n+1] of buffers saved per chunk.
inline std::vector<int64_t> chunk_offsets(const SequenceLayout& L, int64_t C) {
  std::vector<int64_t> cc(L.N + 1, 0);
  for (int64_t n = 0; n < L.N; ++n) cc[n + 1] = cc[n] + (L.length(n) + C - 1) / C;
  return cc;
}

}  // namespace lnx::kernels
