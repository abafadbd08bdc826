// Shared by every mechanism: input validation with messages that name the op and the shapes,
// and the sequence layout that makes batched and packed (varlen) inputs one case.
//
// Tokens of q [B, T, H, K] are viewed as rows of a flat token axis [B·T]; sequence n covers
// rows offsets[n] .. offsets[n+1]. Without cu_seqlens, sequence n is batch row n
// (offsets b·T); with cu_seqlens (B = 1) the offsets are cu_seqlens itself.
#pragma once

#include <string>
#include <vector>

#include "kernels/mechanism.h"

namespace lnx::kernels {

struct SequenceLayout {
  int64_t B = 0, T = 0, H = 0, K = 0, V = 0;
  int64_t N = 0;                 // sequences
  std::vector<int64_t> offsets;  // N + 1 row offsets into the flat token axis
  int64_t length(int64_t n) const { return offsets[n + 1] - offsets[n]; }
};

// Checks q [B,T,H,K], k [B,T,H,K], v [B,T,H,V] (same floating dtype) and cu_seqlens, and
// returns the layout. op names the caller in messages, e.g. "chunk_simple_gla".
SequenceLayout check_qkv(const std::string& op, const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& cu_seqlens);

// x must have exactly shape (named what in messages) and q's dtype.
void check_shape(const std::string& op, const std::string& what, const Tensor& x,
                 const Shape& shape, DType dtype);

// initial_state (optional) must be [N, H, K, V] with q's dtype.
void check_initial_state(const std::string& op, const Tensor& h0, const SequenceLayout& L,
                         DType dtype);

// The scale to use: options.scale or K^-1/2.
double resolve_scale(const MechanismOptions& options, int64_t K);

// chunk_size must be a power of two ≥ 1 (16 ≤ … is typical).
void check_chunk_size(const std::string& op, int64_t chunk_size);

// Optional input: the tensor if present, else an undefined tensor.
inline Tensor optional_input(const TensorDict& inputs, const std::string& name) {
  return inputs.contains(name) ? inputs.at(name) : Tensor();
}

}  // namespace lnx::kernels
