// An f32 GEMM of our own for the products that OpenBLAS handles poorly: small and skinny ones
// (the projections of a narrow model, K or N of 64–256, and the 32–64-sized products the
// mechanisms' chunk forms make inside their parallel loops). C[M,N] = alpha · op(A)[M,K] ·
// op(B)[K,N] + beta · C, f32 FMAs summed in order of k, so each element of C is the same
// whatever the thread count.
//
// On those shapes OpenBLAS spends about as long copying its operands into packed panels and
// scaling C by beta in a pass of its own as in its multiply kernel (a perf profile of the default
// job's step, BENCHMARKS.md "Small products"). Here A is read where it lies (a micro-tile's rows
// are eight pointers, or eight neighbours when op(A) = Aᵀ), B is read in place unless op(B) =
// Bᵀ, when it is packed once per call into column panels by 16 × 16 transposes, and beta is
// applied as C is stored. alpha = 0 reads neither A nor B, as BLAS.
#pragma once

#include <cstdint>

#include "tensor/cpu/blas.h"

namespace lnx {

void gemm_f32(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// True when this CPU runs gemm_f32's AVX-512 kernel (elsewhere it is sgemm).
bool gemm_f32_native();

// Whether lnx::gemm sends an f32 product of this shape to gemm_f32 rather than to OpenBLAS: at
// least 16 rows and columns, a side of 256 or less (bench_matmul's BM_GemmF32 measured 1.1–1.6×
// sgemm on a narrow model's products, 1.0 on 512-sided ones and less beyond), a packed Bᵀ of at
// most 4 MB, and below 64³ only with op(B) = Bᵀ (OpenBLAS's small-matrix kernels are as fast
// on the others).
bool gemm_f32_preferred(Transpose tb, int64_t M, int64_t N, int64_t K);

}  // namespace lnx
