// A toy mechanism written the way a user adds one: this folder holds its maths (declaration
// with the reference form, a recurrent and a chunk primitive with hand-written backwards) and
// toy_registration.cpp registers it with one line. The registry-driven tests, `list`, `op`
// and the docs generator then cover it like a built-in one.
//
// fixed_decay: linear attention with one fixed decay γ for every head, its own option.
//   S_t = γ S_{t−1} + k_t v_tᵀ,   o_t = S_tᵀ (scale · q_t)
// q, k [B,T,H,K], v [B,T,H,V], initial_state [N,H,K,V]; option decay = γ ∈ (0, 1].
#pragma once

#include "kernels/mechanism.h"

namespace lnx::toy {

struct FixedDecayOptions {
  double decay = 0.9;
  template <class V> void visit(V&& v) {
    v("decay", decay, "the decay gamma of the state per token", core::Bounds{1e-6, 1.0});
  }
};

kernels::Mechanism fixed_decay_mechanism();

}  // namespace lnx::toy
