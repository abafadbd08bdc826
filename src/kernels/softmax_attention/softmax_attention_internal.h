// Internal to softmax_attention: the fused primitives and where their queries and keys live.
//
// The primitives run over q [B,T,H,K] and the key buffer: keys [R,HK,K] and values [R,HK,V],
// each sequence's Tc cached keys then its new ones, one sequence after the other (built by the
// forms with tensor ops, so gradients reach the caches and k, v by autodiff). Their own options
// (KeyBuffer) say how long the caches are and how far the window reaches.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "kernels/primitive.h"

namespace lnx::kernels::softmax_attention_detail {

// The primitives' options: the window (0 = unlimited) and the cache length Tc of every sequence.
struct KeyBuffer {
  int64_t window = 0;
  int64_t cache_length = 0;
};

// q, keys, values.
std::vector<InputSpec> kernel_specs();
const Primitive& recurrent_primitive();
const Primitive& chunk_primitive();

// What both forwards write: o [B,T,H,V] and the log-sum-exp of every query row (f64
// [B·T, H]); keep() hands them to the backward.
struct RowOutputs {
  Tensor o, lse;
  explicit RowOutputs(const KernelArgs& a)
      : o(Tensor::empty({a.L.B, a.L.T, a.L.H, a.L.V}, a.dtype)),
        lse(Tensor::empty({a.L.B * a.L.T, a.L.H}, DType::f64)) {}
  KernelOutputs keep(Saved* saved) const {
    if (saved) {
      saved->insert("o", o);
      saved->insert("lse", lse);
    }
    return {o, Tensor()};
  }
};

// Zero gradients of q, keys and values, for the backwards to accumulate into.
inline TensorDict zero_grads(const KernelArgs& a) {
  TensorDict g;
  for (const char* name : {"q", "keys", "values"}) g.insert(name, zeros(a[name].shape(), a.dtype));
  return g;
}

// Where the queries and keys of each sequence live. Query rows index the flat token axis
// [B·T] of q; key rows index the key buffer, where sequence n owns rows koff[n] .. koff[n+1]:
// its Tc cached keys, then its new ones. Query i of sequence n is at position Tc + i.
struct Layout {
  int64_t B = 0, T = 0, H = 0, HK = 0, K = 0, V = 0, N = 0;
  int64_t Tc = 0;                   // cache length
  int64_t window = 0;               // 0 = unlimited
  std::vector<int64_t> qoff, koff;  // N + 1 each

  Layout(const SequenceLayout& L, int64_t HK_, const KeyBuffer& kb)
      : B(L.B),
        T(L.T),
        H(L.H),
        HK(HK_),
        K(L.K),
        V(L.V),
        N(L.N),
        Tc(kb.cache_length),
        window(kb.window),
        qoff(L.offsets),
        koff{0} {
    for (int64_t n = 0; n < N; ++n) koff.push_back(koff.back() + Tc + qlen(n));
  }
  explicit Layout(const KernelArgs& a) : Layout(a.L, a.sizes.at("HK"), a.options_as<KeyBuffer>()) {}

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
  // The key buffer's rows as a sequence layout (for a ChunkPlan over the keys).
  SequenceLayout keys() const {
    SequenceLayout L;
    L.N = N;
    L.offsets = koff;
    return L;
  }
};

}  // namespace lnx::kernels::softmax_attention_detail
