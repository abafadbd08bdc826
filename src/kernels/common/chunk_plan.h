// The one chunk plan of the chunk forms: every sequence cut into chunks of S tokens (the last
// one partial), in order, and where each sequence's per-chunk saved buffers live.
//   chunk (n, c): sequence n's chunk c, rows row0 .. row0 + len of the flat token axis;
//   sequence n's chunks are chunks[first[n] .. first[n+1]);
//   state slots: slot(n, c) = first[n] + n + c holds the state before chunk c of sequence n,
//   slot(n, count(n)) its final state (slots = chunks + N).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/common/layout.h"

namespace lnx::kernels {

struct ChunkPlan {
  struct Chunk {
    int64_t n, c, row0, len;
  };
  int64_t size = 64;  // S
  std::vector<Chunk> chunks;
  std::vector<int64_t> first;  // N + 1
  int64_t longest = 0;         // the longest chunk
  int64_t slots = 0;

  int64_t total() const { return static_cast<int64_t>(chunks.size()); }
  int64_t count(int64_t n) const { return first[n + 1] - first[n]; }
  int64_t index(int64_t n, int64_t c) const { return first[n] + c; }
  const Chunk& chunk(int64_t n, int64_t c) const { return chunks[first[n] + c]; }
  int64_t slot(int64_t n, int64_t c) const { return first[n] + n + c; }

  static ChunkPlan make(const SequenceLayout& L, int64_t S) {
    ChunkPlan p;
    p.size = S;
    p.first.push_back(0);
    for (int64_t n = 0; n < L.N; ++n) {
      for (int64_t r = L.offsets[n]; r < L.offsets[n + 1]; r += S) {
        const int64_t len = std::min(S, L.offsets[n + 1] - r);
        p.chunks.push_back({n, static_cast<int64_t>(p.chunks.size()) - p.first[n], r, len});
        p.longest = std::max(p.longest, len);
      }
      p.first.push_back(static_cast<int64_t>(p.chunks.size()));
    }
    p.slots = p.total() + L.N;
    return p;
  }
};

}  // namespace lnx::kernels
