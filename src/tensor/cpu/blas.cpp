#include "tensor/cpu/blas.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "tensor/cpu/cpu_features.h"
#include "tensor/cpu/gemm_bf16.h"
#include "tensor/cpu/gemm_f32.h"
#include "tensor/error.h"
#include "tensor/profile.h"

namespace lnx {
namespace {

// CBLAS enum values (cblas.h): row major 101, no-trans 111, trans 112.
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using DgemmFn = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int, double, double*,
                         int);
using SgemvFn = void (*)(int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using DgemvFn = void (*)(int, int, int, int, double, const double*, int, const double*, int, double, double*, int);
using SetThreadsFn = void (*)(int);
using CharFn = char* (*)();

struct Blas {
  SgemmFn sgemm = nullptr;
  DgemmFn dgemm = nullptr;
  SgemvFn sgemv = nullptr;  // one-row products (decoding): OpenBLAS's sgemm copies all of B per call
  DgemvFn dgemv = nullptr;
  SetThreadsFn set_threads = nullptr;
  BlasInfo info;
};

// The core type to ask OpenBLAS for, given what the CPU can run, or "" to leave the
// environment alone.
std::string wanted_coretype(const CpuFeatures& cpu, const char* current) {
  if (!cpu.avx512f || !cpu.avx512bw || !cpu.avx512vl || !cpu.avx512dq) return "";
  std::string cur = current ? current : "";
  for (auto& c : cur) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Unset means OpenBLAS detects the core itself; AVX-512 families are left as they are.
  if (cur.empty() || cur == "skylakex" || cur == "cooperlake" || cur == "sapphirerapids") return "";
  return cpu.avx512_bf16 ? "Cooperlake" : "SkylakeX";
}

Blas load_blas() {
  Blas b;
  const char* env_name = "OPENBLAS_CORETYPE";
  const char* cur = std::getenv(env_name);
  std::string saved = cur ? cur : "";
  bool had = cur != nullptr;
  std::string want = wanted_coretype(cpu_features(), cur);
  if (!want.empty()) setenv(env_name, want.c_str(), 1);

  void* h = nullptr;
  // The OpenMP build first, by path: the plain name follows Debian's alternatives, which may
  // point at the pthreads build (its own thread pool would oversubscribe ours).
  for (const char* name : {"/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
                           "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0", "libopenblas.so.0",
                           "libopenblas.so", "libcblas.so.3", "libblas.so.3"}) {
    h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (h && dlsym(h, "cblas_sgemm")) {
      b.info.library = name;
      break;
    }
    if (h) dlclose(h);
    h = nullptr;
  }
  if (!want.empty()) {  // the process environment stays as the user left it
    if (had)
      setenv(env_name, saved.c_str(), 1);
    else
      unsetenv(env_name);
  }
  if (!h)
    throw Error(
        "[blas] could not load a CBLAS library (tried libopenblas.so.0, libcblas.so.3, "
        "libblas.so.3); run scripts/setup.sh to install libopenblas-openmp-dev");
  b.sgemm = reinterpret_cast<SgemmFn>(dlsym(h, "cblas_sgemm"));
  b.dgemm = reinterpret_cast<DgemmFn>(dlsym(h, "cblas_dgemm"));
  b.sgemv = reinterpret_cast<SgemvFn>(dlsym(h, "cblas_sgemv"));
  b.dgemv = reinterpret_cast<DgemvFn>(dlsym(h, "cblas_dgemv"));
  b.set_threads = reinterpret_cast<SetThreadsFn>(dlsym(h, "openblas_set_num_threads"));
  if (auto core = reinterpret_cast<CharFn>(dlsym(h, "openblas_get_corename"))) b.info.core = core();
  if (auto cfg = reinterpret_cast<CharFn>(dlsym(h, "openblas_get_config"))) b.info.config = cfg();
  using IntFn = int (*)();
  if (auto par = reinterpret_cast<IntFn>(dlsym(h, "openblas_get_parallel"))) {
    const int mode = par();
    b.info.threading = mode == 2 ? "openmp" : mode == 1 ? "pthreads" : "serial";
    if (mode == 1)
      std::fprintf(stderr,
                   "linearnexus: %s is the pthreads build of OpenBLAS; its threads and ours can "
                   "oversubscribe the cores (install libopenblas0-openmp)\n",
                   b.info.library.c_str());
  }
  if (!b.dgemm) throw Error("[blas] the loaded BLAS has no cblas_dgemm");
  if (!want.empty()) {
    b.info.overridden = true;
    b.info.note = fmt::format(
        "linearnexus: OPENBLAS_CORETYPE={} would run AVX2 GEMM kernels on this AVX-512 CPU; "
        "loaded OpenBLAS with {} kernels instead (core: {})",
        saved.empty() ? "(empty)" : saved, want, b.info.core);
    std::fprintf(stderr, "%s\n", b.info.note.c_str());
  }
  return b;
}

Blas& blas() {
  static Blas b = load_blas();
  return b;
}

int to_int(int64_t v, const char* what) {
  LNX_CHECK(v >= 0 && v <= 0x7fffffff, ShapeError, "[gemm] {} = {} does not fit a BLAS int", what, v);
  return static_cast<int>(v);
}

// A one-row product C[1, N] = α·op(A)[1, K]·op(B)[K, N] + β·C as a matrix–vector product over B:
// OpenBLAS's gemm packs (copies) the whole of B on every call, which at M = 1 — every weight
// product of a decoding step — costs about as much as the product itself (BENCHMARKS.md,
// "Hugging Face Mamba-2 130M shape"); gemv streams B once.
template <typename T, typename Gemv> bool one_row(Gemv gemv, Transpose ta, Transpose tb, int64_t M, int64_t N,
                                                  int64_t K, T alpha, const T* A, int64_t lda, const T* B, int64_t ldb,
                                                  T beta, T* C) {
  if (M != 1 || !gemv || K == 0) return false;
  const int incx = ta == Transpose::Yes ? to_int(lda, "lda") : 1;  // op(A) row 0: a column of A when transposed
  if (tb == Transpose::No)                                         // B [K, N]: c = Bᵀ a
    gemv(kRowMajor, kTrans, to_int(K, "K"), to_int(N, "N"), alpha, B, to_int(ldb, "ldb"), A, incx, beta, C, 1);
  else  // B [N, K]: c = B a
    gemv(kRowMajor, kNoTrans, to_int(N, "N"), to_int(K, "K"), alpha, B, to_int(ldb, "ldb"), A, incx, beta, C, 1);
  return true;
}

}  // namespace

namespace {
std::atomic<MatmulPrecision> g_matmul_precision{MatmulPrecision::f32};
}  // namespace

void set_matmul_precision(MatmulPrecision p) { g_matmul_precision.store(p); }
MatmulPrecision matmul_precision() { return g_matmul_precision.load(std::memory_order_relaxed); }

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "f32") return MatmulPrecision::f32;
  if (name == "bf16") return MatmulPrecision::bf16;
  throw ValueError(fmt::format("[precision] unknown precision '{}'; precisions are f32, bf16", name));
}

const char* matmul_precision_name(MatmulPrecision p) { return p == MatmulPrecision::bf16 ? "bf16" : "f32"; }

void blas_sgemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  BlasTimer timer(M, N, K);
  if (one_row(blas().sgemv, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C)) return;
  blas().sgemm(kRowMajor, ta == Transpose::Yes ? kTrans : kNoTrans, tb == Transpose::Yes ? kTrans : kNoTrans,
               to_int(M, "M"), to_int(N, "N"), to_int(K, "K"), alpha, A, to_int(lda, "lda"), B, to_int(ldb, "ldb"),
               beta, C, to_int(ldc, "ldc"));
}

void gemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (matmul_precision() == MatmulPrecision::bf16 && M > 1) {
    gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (gemm_f32_preferred(tb, M, N, K)) {
    gemm_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  blas_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(Transpose ta, Transpose tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  BlasTimer timer(M, N, K);
  if (one_row(blas().dgemv, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C)) return;
  blas().dgemm(kRowMajor, ta == Transpose::Yes ? kTrans : kNoTrans, tb == Transpose::Yes ? kTrans : kNoTrans,
               to_int(M, "M"), to_int(N, "N"), to_int(K, "K"), alpha, A, to_int(lda, "lda"), B, to_int(ldb, "ldb"),
               beta, C, to_int(ldc, "ldc"));
}

const BlasInfo& blas_info() { return blas().info; }

void blas_set_num_threads(int n) {
  if (blas().set_threads) blas().set_threads(n);
}

double measure_sgemm_gflops(int64_t n) {
  std::vector<float> a(static_cast<size_t>(n * n), 1.0f), b(static_cast<size_t>(n * n), 0.5f),
      c(static_cast<size_t>(n * n));
  auto run = [&] {
    blas_sgemm(Transpose::No, Transpose::No, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  };
  run();
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / best / 1e9;
}

}  // namespace lnx
