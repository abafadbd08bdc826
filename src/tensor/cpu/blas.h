// GEMM through CBLAS (OpenBLAS). OpenBLAS is loaded at first use with dlopen rather than
// linked, so the library can choose its kernels first: OpenBLAS reads OPENBLAS_CORETYPE once,
// when it loads, and an environment that forces "Haswell" on an AVX-512 CPU would halve the
// GEMM rate. If the CPU has AVX-512 and the variable names a slower core, the variable is
// overridden for the load (and restored right after), with one log line on stderr.
#pragma once

#include <cstdint>
#include <string>

namespace lnx {

enum class Transpose { No, Yes };

// Row-major C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C. f32: OpenBLAS's sgemm, or our
// own kernel (gemm_f32.h) on the small and skinny shapes where it is faster.
void gemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// OpenBLAS's sgemm itself, whatever the matmul precision (the ceiling benchmarks measure).
void blas_sgemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The inner products of f32 GEMMs (lnx::gemm, so every matmul op and every kernel's matrix
// product, forward and backward): f32 (sgemm or gemm_f32), or bf16 (gemm_bf16: operands rounded to bf16,
// f32 sums) — training's `train.precision: bf16`. Process-wide, like the thread count; one-row
// products (decoding's matrix-vector products) stay f32.
enum class MatmulPrecision { f32, bf16 };
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();
MatmulPrecision parse_matmul_precision(const std::string& name);  // "f32" | "bf16", ValueError otherwise
const char* matmul_precision_name(MatmulPrecision p);

// Sets the precision for a scope and restores the previous one.
class MatmulPrecisionScope {
 public:
  explicit MatmulPrecisionScope(MatmulPrecision p) : previous_(matmul_precision()) { set_matmul_precision(p); }
  ~MatmulPrecisionScope() { set_matmul_precision(previous_); }
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;

 private:
  MatmulPrecision previous_;
};

struct BlasInfo {
  std::string library;      // path that was loaded
  std::string core;         // OpenBLAS's kernel family, e.g. "Cooperlake"
  std::string config;       // OpenBLAS build configuration string
  std::string threading;    // "openmp", "pthreads" or "serial" (OpenBLAS only)
  bool overridden = false;  // we replaced a slower OPENBLAS_CORETYPE
  std::string note;         // the log line printed when overridden
};
const BlasInfo& blas_info();  // loads BLAS if not yet loaded
void blas_set_num_threads(int n);
// The raw sgemm rate (GFLOP/s, best of 5) at M = N = K = n on plain buffers, all threads: the
// ceiling benchmarks report against.
double measure_sgemm_gflops(int64_t n = 1024);

}  // namespace lnx
