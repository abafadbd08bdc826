// GEMM with bf16 inner products: C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, where A and
// B are f32 in memory, rounded to bf16 (round to nearest even) as they are packed, and products
// are summed in f32. On a CPU with AVX512_BF16 the inner loop is VDPBF16PS (two bf16 products
// added into an f32 lane per instruction: twice FMA's rate); elsewhere the rounded operands go
// through sgemm, so results agree up to the order of the f32 sums (and for subnormal inputs,
// which the vector conversion flushes to zero while the scalar rounding keeps them).
//
// Layout: A is packed in micro-panels of MR rows, each row's K values as bf16 pairs (k, k+1)
// [MR][K/2]; B in micro-panels of NR columns, [K/2][NR][2]. K is padded to even with zeros and
// M, N to the micro-panel with zero rows and columns, which the stores leave out.
#pragma once

#include <cstdint>

#include "tensor/cpu/blas.h"

namespace lnx {

void gemm_bf16(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// True when gemm_bf16 runs its AVX512_BF16 kernel on this CPU.
bool gemm_bf16_native();

// The machine's arithmetic peak on all threads, GFLOP/s: independent 512-bit FMAs (f32, 32 FLOPs
// each) or VDPBF16PS (bf16 pairs into f32, 64 FLOPs each) in registers, no memory traffic. The
// ceiling no GEMM can pass; 0 for bf16 without AVX512_BF16.
double measure_peak_gflops(bool bf16);

// x rounded to the nearest bf16 (ties to even) and back to f32; NaN stays NaN.
float round_to_bf16(float x);

}  // namespace lnx
