// Internal to softmax_attention: input validation, the key buffer (cache and new keys of each
// sequence, one after the other) and the autodiff wiring the forms share.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common/layout.h"

namespace lnx::kernels::attention_detail {

// Where the queries and keys of each sequence live. Query rows index the flat token axis
// [B·T] of q; key rows index the key buffer, where sequence n owns rows koff[n] .. koff[n+1]:
// its Tc cached keys, then its new ones. Query i of sequence n is at position Tc + i.
struct Layout {
  int64_t B = 0, T = 0, H = 0, HK = 0, K = 0, V = 0, N = 0;
  int64_t Tc = 0;      // cache length
  int64_t window = 0;  // 0 = unlimited
  std::vector<int64_t> qoff, koff;  // N + 1 each
  int64_t group() const { return H / HK; }
  int64_t qlen(int64_t n) const { return qoff[n + 1] - qoff[n]; }
  int64_t klen(int64_t n) const { return koff[n + 1] - koff[n]; }
  // The keys query i of a sequence sees, as local key indices [first, second).
  std::pair<int64_t, int64_t> keys_of(int64_t i) const {
    const int64_t pos = Tc + i;
    return {window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0, pos + 1};
  }
  // The queries that see key j: local query indices [first, second) (may be empty).
  std::pair<int64_t, int64_t> queries_of(int64_t j, int64_t qlen) const {
    const int64_t lo = std::max<int64_t>(0, j - Tc);
    const int64_t hi = window > 0 ? std::min<int64_t>(qlen, j - Tc + window) : qlen;
    return {lo, std::max(lo, hi)};
  }
};

struct Args {
  Layout L;
  // With their history (what gradients flow to): q [B,T,H,K]; kall [rows, HK, K] and vall
  // [rows, HK, V], the key buffer built with tensor ops from the caches and k, v (so their
  // gradients reach the caches and k, v by autodiff).
  Tensor q, kall, vall;
  // Detached and contiguous, for the kernels.
  Tensor qd, kd, vd;
  double scale = 1.0;
  TensorDict extra_state;  // {"k_cache", "v_cache"} when asked for and rectangular
};

// Validates q, k, v, k_cache, v_cache (optional, both or neither), cu_seqlens and window.
Args parse_args(const std::string& op, const TensorDict& inputs, const MechanismOptions& options);

// The kernels' backward: given do [B,T,H,V] (contiguous), returns dq [B,T,H,K] and the
// gradients of the key buffer dk [rows,HK,K], dv [rows,HK,V].
using Backward = std::function<std::array<Tensor, 3>(const Args& a, const Tensor& d_o)>;

// Packs o and the extra state and, when q, k or v (or the caches) need a gradient, records a
// node named op over q, kall, vall whose vjp calls backward.
MechanismOutputs run_and_record(const std::string& op, const Args& a, const Tensor& o, Backward backward);

}  // namespace lnx::kernels::attention_detail
