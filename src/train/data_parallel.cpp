#include "train/data_parallel.h"

#include <cmath>
#include <cstring>

#include "io/read_file.h"
#include "io/safetensors.h"
#include "tensor/error.h"

namespace lnx::train {

void broadcast_parameters(dist::Communicator& comm, const TensorDict& params) {
  if (comm.size() == 1) return;
  std::string bytes;
  if (comm.root())
    for (const auto& [name, p] : params) bytes.append(static_cast<const char*>(p.raw_data()), p.nbytes());
  comm.broadcast(bytes, 0, "the broadcast of the parameters");
  size_t at = 0;
  for (const auto& [name, p] : params) {
    LNX_CHECK(at + p.nbytes() <= bytes.size(), DistributedError,
              "[train] rank {}: the parameters broadcast by rank 0 are {} bytes, fewer than this rank's model needs",
              comm.rank(), bytes.size());
    if (!comm.root()) std::memcpy(p.raw_data(), bytes.data() + at, p.nbytes());
    at += p.nbytes();
  }
  LNX_CHECK(at == bytes.size(), DistributedError,
            "[train] rank {}: the parameters broadcast by rank 0 are {} bytes but this rank's model has {}: the ranks "
            "built different models",
            comm.rank(), bytes.size(), at);
}

std::string broadcast_file(dist::Communicator& comm, const std::string& path, const char* op) {
  std::string bytes;
  if (comm.root()) bytes = io::read_file(op, path);
  comm.broadcast(bytes, 0, "the broadcast of a checkpoint file");
  return bytes;
}

TensorDict gather_optimizer_state(dist::Communicator& comm, const Optimizer& optimizer, bool sharded) {
  if (!sharded || comm.size() == 1) return comm.root() ? optimizer.state() : TensorDict{};
  const std::vector<std::string> parts =
      comm.gather(serialize_safetensors(optimizer.state()), 0, "the gather of the optimizer state");
  TensorDict merged;
  for (const std::string& part : parts) {
    const SafetensorsFile f = parse_safetensors(part.data(), part.size());
    for (const auto& [name, t] : f.tensors)
      if (!merged.contains(name)) merged.insert(name, t);
  }
  return merged;
}

TensorDict owned_optimizer_state(const TensorDict& state, const TensorDict& owned) {
  TensorDict mine;
  for (const auto& [name, t] : state) {
    const size_t slash = name.find('/');
    if (slash == std::string::npos || owned.contains(name.substr(slash + 1))) mine.insert(name, t);
  }
  return mine;
}

double clip_grad_norm_sharded(dist::Communicator& comm, const TensorDict& owned, double max_norm) {
  const double norm = std::sqrt(comm.allreduce_sum(grad_norm_squared(owned), "the all-reduce of the gradient norm"));
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  scale_grads(owned, max_norm / norm);
  return norm;
}

}  // namespace lnx::train
