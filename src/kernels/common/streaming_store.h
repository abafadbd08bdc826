// Writing a final state without reading it first. A recurrent form keeps each (sequence, head)
// state in a scratch buffer that stays in cache while the tokens update it, and writes it to
// the final-state tensor once at the end. An ordinary store to memory that is not cached
// first reads the line (write-allocate), so copying a state out costs a read and a write of
// it; non-temporal stores write whole lines without the read and without evicting the cache.
// In decoding the states are read once and written once per token (24 layers of a 768-wide
// Mamba-2 hold 19 MB), next to the weights, so the read saved is a third of their traffic.
// The non-temporal path is compiled for AVX-512 builds (LNX_NATIVE on such a CPU); elsewhere
// the write is a plain copy, correct and without the saving. Non-temporal stores are weakly
// ordered: the loop that makes them ends with a fence (streaming_store_fence) before another
// thread may read what they wrote.
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace lnx::kernels {

// dst[0, n) = src[0, n); non-temporal where dst is 64-byte aligned and the type is f32 or f64.
template <typename T> void streaming_store(T* dst, const T* src, int64_t n) {
#if defined(__AVX512F__)
  constexpr int64_t kLane = 64 / static_cast<int64_t>(sizeof(T));
  if constexpr (sizeof(T) == 4 || sizeof(T) == 8) {
    if (reinterpret_cast<uintptr_t>(dst) % 64 == 0) {
      int64_t i = 0;
      for (; i + kLane <= n; i += kLane) {
        if constexpr (sizeof(T) == 4)
          _mm512_stream_ps(reinterpret_cast<float*>(dst + i), _mm512_loadu_ps(reinterpret_cast<const float*>(src + i)));
        else
          _mm512_stream_pd(reinterpret_cast<double*>(dst + i),
                           _mm512_loadu_pd(reinterpret_cast<const double*>(src + i)));
      }
      std::copy(src + i, src + n, dst + i);
      return;
    }
  }
#endif
  std::copy(src, src + n, dst);
}

// Orders this thread's non-temporal stores before its later stores (and a barrier's).
inline void streaming_store_fence() {
#if defined(__AVX512F__)
  _mm_sfence();
#endif
}

}  // namespace lnx::kernels
