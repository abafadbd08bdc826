// The sequence layout that makes batched and packed (varlen) inputs one case.
//
// Tokens of q [B, T, H, K] are viewed as rows of a flat token axis [B·T]; sequence n covers
// rows offsets[n] .. offsets[n+1]. Without cu_seqlens, sequence n is batch row n
// (offsets b·T); with cu_seqlens (B = 1) the offsets are cu_seqlens itself.
#pragma once

#include <cstdint>
#include <vector>

namespace lnx::kernels {

struct SequenceLayout {
  int64_t B = 0, T = 0, H = 0, K = 0, V = 0;
  int64_t N = 0;                 // sequences
  std::vector<int64_t> offsets;  // N + 1 row offsets into the flat token axis
  int64_t length(int64_t n) const { return offsets[n + 1] - offsets[n]; }
};

}  // namespace lnx::kernels
