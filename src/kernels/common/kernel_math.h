// Small vector helpers the fused kernels share. Matrix products go through lnx::gemm
// (tensor/cpu/blas.h), called with Transpose flags, single-threaded inside the kernels'
// parallel loops.
#pragma once

#include <cstdint>
#include <limits>

#include "tensor/cpu/blas.h"

namespace lnx::kernels {

inline constexpr Transpose kNoTrans = Transpose::No, kTrans = Transpose::Yes;

// Σ a⊙b with 16 independent partial sums (so it vectorises without reassociation flags).
template <typename T> inline T dot(const T* a, const T* b, int64_t n) {
  T lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) lanes[l] += a[i + l] * b[i + l];
  T s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int l = 0; l < 16; ++l) s += lanes[l];
  return s;
}

// Σ a⊙b accumulated in double (for gradients that sum many terms of mixed size).
template <typename T> inline double dot_f64(const T* a, const T* b, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t x = 0; x < n; ++x) s += static_cast<double>(a[x]) * b[x];
  return s;
}

// y += alpha · x
template <typename T> inline void axpy(T alpha, const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// Values below the normal range become 0 (keeps running products of gates out of denormals).
template <typename T> inline T flush(T x) { return x < std::numeric_limits<T>::min() ? T(0) : x; }

}  // namespace lnx::kernels
