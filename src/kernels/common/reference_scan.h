// The driver every reference form shares: run a recurrence token by token over each
// sequence of the layout, with tensor ops (so autodiff differentiates it).
#pragma once

#include <functional>
#include <utility>

#include "kernels/common/layout.h"

namespace lnx::kernels {

// step(row, S) → (S', o_row): S and S' [H, K, V], o_row [H, V]; row indexes the flat token
// axis [B·T]. The state starts at initial_state[n] (or zeros) for each sequence n.
using ReferenceStep = std::function<std::pair<Tensor, Tensor>(int64_t row, const Tensor& S)>;

MechanismOutputs reference_scan(const SequenceLayout& L, const Tensor& initial_state, DType dtype,
                                bool output_final_state, const ReferenceStep& step);

}  // namespace lnx::kernels
