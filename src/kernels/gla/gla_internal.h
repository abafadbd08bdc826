// Internal to gla: its input specs and its fused primitives.
#pragma once

#include <vector>

#include "kernels/primitive.h"

namespace lnx::kernels::gla_detail {

// q, k [B,T,H,K], v [B,T,H,V], g [B,T,H,K], initial_state [N,H,K,V] (optional).
std::vector<InputSpec> input_specs();

const Primitive& recurrent_primitive();
const Primitive& chunk_primitive();

}  // namespace lnx::kernels::gla_detail
