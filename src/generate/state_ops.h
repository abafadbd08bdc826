// Row operations on a core::ModelState holding N sequences (every state tensor has the
// sequences on axis 0: recurrent [N,H,K,V], conv caches [N,W−1,C], KV caches [N,L,HK,Dh]
// right-padded with "cache_lengths" [N], "positions" [N]). Used to compact a batch to its
// unfinished sequences, to write their new state back, and to deep-copy a state.
#pragma once

#include <vector>

#include "core/state.h"
#include "models/lm_model.h"

namespace lnx::generate {

// The given sequences' states, in that order (each trimmed by Mixer::select_sequence, then
// stacked, so ragged KV caches are right-padded to the longest again).
core::ModelState select_rows(const models::LMModel& model, const core::ModelState& state,
                             const std::vector<int64_t>& rows);

// Single- (or multi-) sequence states stacked along the sequence axis. Tensors whose
// non-leading sizes differ (KV caches of different lengths) are right-padded with zeros, which
// the attention mixer ignores through "cache_lengths". Every part must hold the same names.
core::ModelState stack_states(const std::vector<core::ModelState>& parts);

// state with rows[j] replaced by sequence j of part (the other sequences keep theirs).
core::ModelState scatter_rows(const models::LMModel& model, const core::ModelState& state,
                              const std::vector<int64_t>& rows, const core::ModelState& part);

// A deep copy: every tensor cloned into its own storage, so nothing aliases the original.
core::ModelState clone_state(const core::ModelState& state);

}  // namespace lnx::generate
