// The data-parallel pieces of the trainer (trainer.cpp): what ranks exchange besides gradients
// (dist/gradient_reducer.h does those). Every function is a collective: all ranks call it, in
// the same order. With one rank each is a copy or nothing.
#pragma once

#include <string>

#include "dist/communicator.h"
#include "tensor/tensor_dict.h"
#include "train/optim.h"

namespace lnx::train {

// Root's value of every parameter on every rank (same names and shapes everywhere).
void broadcast_parameters(dist::Communicator& comm, const TensorDict& params);

// The bytes of a file that root reads, on every rank (a rank need not see root's filesystem).
std::string broadcast_file(dist::Communicator& comm, const std::string& path, const char* op = "train");

// The whole optimizer state on root: a sharded optimizer's parts merged (the step counters,
// equal on every rank, once), so the checkpoint is the same whatever the number of ranks.
// Without sharding, root's own state. Other ranks get an empty dict.
TensorDict gather_optimizer_state(dist::Communicator& comm, const Optimizer& optimizer, bool sharded);

// The part of a whole optimizer state (names "<slot>/<parameter>", counters without '/') that
// an optimizer over `owned` holds: its parameters' buffers and every counter.
TensorDict owned_optimizer_state(const TensorDict& state, const TensorDict& owned);

// Global-norm clipping when each rank holds the gradients of a disjoint part of the
// parameters (sharded optimizer): the norm over all ranks' parts, each part scaled alike.
double clip_grad_norm_sharded(dist::Communicator& comm, const TensorDict& owned, double max_norm);

}  // namespace lnx::train
