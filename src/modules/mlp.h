// The SwiGLU feed-forward of Llama-style blocks: y = W_down (silu(W_gate x) ⊙ W_up x),
// x [..., D], hidden width F. Linear weights N(0, 0.02²), no biases.
#pragma once

#include "modules/linear.h"

namespace lnx::modules {

class SwiGLU : public Module {
 public:
  SwiGLU(int64_t dim, int64_t hidden, Generator& gen, double std = 0.02);
  Tensor forward(const Tensor& x) const;
  int64_t hidden() const { return gate_proj.out_features(); }
  Linear& gate_proj;
  Linear& up_proj;
  Linear& down_proj;
};

// flash-linear-attention's default hidden width for hidden_ratio r: ⌈(2/3)·r·D / 256⌉·256,
// rounded to a multiple of 32 instead for small models (D < 256).
int64_t swiglu_hidden(int64_t dim, double hidden_ratio);

}  // namespace lnx::modules
