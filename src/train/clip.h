// Gradient clipping by the global L2 norm over every parameter's gradient.
#pragma once

#include "tensor/tensor_dict.h"

namespace lnx::train {

// norm = sqrt(Σ over all parameters with a gradient of Σ g²), accumulated in double.
// If norm > max_norm every gradient is replaced by g · (max_norm / norm), so the new global
// norm is max_norm (the leaf's grad is set to a scaled copy: gradients from backward may share
// storage with one another, so scaling their memory could scale a shared buffer twice).
// Returns the norm before clipping. A NaN or infinite norm is returned as is and nothing is
// scaled (the trainer decides to skip the step). Parameters without a gradient are ignored.
// max_norm must be > 0 (ValueError).
double clip_grad_norm(const TensorDict& params, double max_norm);

// The global L2 norm alone, nothing changed; and its square (Σ g², what ranks holding disjoint
// parts of the parameters add up).
double grad_norm(const TensorDict& params);
double grad_norm_squared(const TensorDict& params);

// Replaces every defined gradient g by a scaled copy g · factor (clip_grad_norm's second half).
void scale_grads(const TensorDict& params, double factor);

}  // namespace lnx::train
