// State a model carries between calls (decoding, split-and-resume): per layer, a set of named
// tensors (the mixer's recurrent state [N,H,K,V], its conv caches [N,W−1,D], attention's KV
// cache [N,L,HK,D]) and the number of tokens each sequence has seen. N = sequences
// (B without cu_seqlens, the cu_seqlens count with it).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor_dict.h"

namespace lnx::core {

struct LayerState {
  TensorDict tensors;  // names chosen by the mixer ("recurrent", "conv_q", "k_cache", …)
  bool empty() const { return tensors.empty(); }
  bool has(const std::string& name) const { return tensors.contains(name); }
  // The named tensor, or an undefined one (a fresh sequence starts from zeros).
  Tensor get(const std::string& name) const { return has(name) ? tensors.at(name) : Tensor(); }
  void set(const std::string& name, const Tensor& t) {
    if (t.defined()) tensors.set(name, t);
  }
};

// One LayerState per block, plus the tokens seen so far per sequence (positions for RoPE).
struct ModelState {
  std::vector<LayerState> layers;
  std::vector<int64_t> seen;  // [N]; empty = a fresh start
  bool empty() const { return layers.empty(); }
};

}  // namespace lnx::core
