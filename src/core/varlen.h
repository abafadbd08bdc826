// Variable-length batches. Two layouts reach a mixer: a padded batch x [B, T, …] with a mask
// [B, T] (1 = a real token), and packed sequences x [1, Σ len, …] with cu_seqlens [N + 1]
// (what the kernels take). The model packs once at its input and unpacks at its output.
//   B: batch rows, T: padded length, N: sequences, P: packed tokens (Σ len).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace lnx::core {

struct Packing {
  Tensor cu_seqlens;     // [N + 1] i64, N = B
  Tensor gather_index;   // [P] i64: packed token p comes from flat row gather_index[p]
  Tensor scatter_index;  // [B·T] i64: flat row r is packed token scatter_index[r], or P (pad)
  int64_t B = 0, T = 0, P = 0;
  std::vector<int64_t> lengths;  // [N] tokens per sequence
};

// mask [B, T] (bool-like: any integer or float dtype, entries 0 or 1). Each row's real tokens,
// in order, become one sequence (rows without tokens become empty sequences).
Packing packing_from_mask(const Tensor& mask);
// Sequence boundaries of lengths, as cu_seqlens [N + 1] i64.
Tensor cu_seqlens_from_lengths(const std::vector<int64_t>& lengths);
// cu_seqlens [N + 1] (i32 or i64) → lengths, validated (starts at 0, non-decreasing).
std::vector<int64_t> lengths_from_cu_seqlens(const Tensor& cu_seqlens, const char* op);

// x [B, T, …] → [1, P, …] (differentiable).
Tensor pack(const Tensor& x, const Packing& p);
// y [1, P, …] → [B, T, …] with zeros at padding (differentiable).
Tensor unpack(const Tensor& y, const Packing& p);

}  // namespace lnx::core
