// Normalisations over the last axis x [..., D].
#pragma once

#include "modules/module.h"

namespace lnx::modules {

// y = x / rms(x) ⊙ weight, weight initialised to 1; zero-centered (Qwen3-Next's, Gemma's):
// y = x / rms(x) ⊙ (1 + weight), weight initialised to 0, so weight decay pulls it to identity.
class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps, bool zero_centered = false);
  Tensor forward(const Tensor& x) const;
  Tensor& weight;  // [D]
  double eps;
  bool zero_centered;
};

// Gated RMSNorm of the gated linear-attention and Mamba-2 layers, gate z [..., D]:
// norm_before_gate: y = rmsnorm(x) ⊙ weight ⊙ silu(z)   (flash-linear-attention's FusedRMSNormGated)
// otherwise:        y = rmsnorm(x ⊙ silu(z)) ⊙ weight   (Mamba-2's RMSNormGated)
class GatedRMSNorm : public Module {
 public:
  GatedRMSNorm(int64_t dim, double eps, bool norm_before_gate);
  Tensor forward(const Tensor& x, const Tensor& z) const;
  Tensor& weight;  // [D]
  double eps;
  bool norm_before_gate;
};

}  // namespace lnx::modules
