// Software prefetch for token loops. A head's token rows sit H·K elements apart, a few per
// 4 KiB page, and the hardware prefetchers do not follow such a stream across pages: a loop
// that reads a row or two per token waits on memory for every row unless it asks for the rows
// kPrefetchTokens tokens ahead (in whichever direction it walks).
#pragma once

#include <cstdint>

namespace lnx::kernels {

constexpr int64_t kPrefetchTokens = 4;

// Fetches `rows` rows of `width` elements, `ld` apart, into the cache.
template <typename T> void prefetch_rows(const T* p, int64_t rows, int64_t ld, int64_t width) {
  constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t x = 0; x < width; x += kLine) __builtin_prefetch(p + r * ld + x, 0, 3);
}

// The same for rows about to be written (a store that misses waits for the line as a load does).
template <typename T> void prefetch_rows_for_write(T* p, int64_t rows, int64_t ld, int64_t width) {
  constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t x = 0; x < width; x += kLine) __builtin_prefetch(p + r * ld + x, 1, 3);
}

}  // namespace lnx::kernels
