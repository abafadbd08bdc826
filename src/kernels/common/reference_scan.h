// The driver every reference form shares: run a recurrence token by token over each
// sequence of the call's layout, with tensor ops (so autodiff differentiates it).
#pragma once

#include <functional>
#include <utility>

#include "kernels/mechanism.h"

namespace lnx::kernels {

// step(row, S) → (S', o_row): S and S' [H, K, V], o_row [H, V]; row indexes the flat token
// axis [B·T]. The state starts at initial_state[n] (or zeros) for each sequence n.
using ReferenceStep = std::function<std::pair<Tensor, Tensor>(int64_t row, const Tensor& S)>;

MechanismOutputs reference_scan(const SequenceLayout& L, const Tensor& initial_state, DType dtype,
                                bool output_final_state, const ReferenceStep& step);

// The same over a checked call (its layout, initial_state, dtype and output_final_state).
inline MechanismOutputs reference_scan(const Call& c, const ReferenceStep& step) {
  return reference_scan(c.layout, c["initial_state"], c.dtype, c.options.output_final_state, step);
}

}  // namespace lnx::kernels
