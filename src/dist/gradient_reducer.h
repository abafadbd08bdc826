// Data parallelism's gradient exchange: every rank holds the model, computes gradients on its
// share of the batch, and these are summed over ranks in buckets, each started as soon as all
// of its gradients are final during the backward pass (lnx::backward's on_leaf_ready), so the
// communication overlaps the rest of the backward.
//
// Buckets hold parameters in reverse order (the backward finishes the last layers first) up to
// bucket_bytes each, one dtype per bucket, and are started strictly in order on every rank
// (MPI matches collectives by order; a bucket whose gradients are late holds back the ones
// after it). A bucket is a flat buffer [gradients…, flags…]: one flag per parameter, 1 where
// this rank has a gradient for it, so that after the sum a parameter no rank touched (an MoE
// expert no token chose) keeps an undefined gradient, exactly as in a single process.
//
// Sharded (ZeRO-1): each parameter is owned by one rank (whole parameters, so Muon still sees
// whole matrices; assigned largest first to the least-loaded rank). A bucket's buffer is laid
// out by owner, the sum is a reduce-scatter, and each rank ends with the gradients of the
// parameters it owns, updates them with its optimizer (which holds only their state), and
// gather_parameters() all-gathers the new values.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "dist/communicator.h"
#include "tensor/autograd.h"
#include "tensor/tensor_dict.h"

namespace lnx::dist {

struct ReducerOptions {
  int64_t bucket_bytes = int64_t{4} << 20;  // gradient bytes per collective
  bool shard = false;                       // ZeRO-1: shard the optimizer state (see the banner)
};

class GradientReducer {
 public:
  // params: the model's parameters (leaves), the same names, shapes and dtypes on every rank.
  GradientReducer(Communicator& comm, const TensorDict& params, ReducerOptions options = {});
  // Destroyed by an exception (the run is about to abort), collectives may still write into the
  // buffers: they are then left allocated.
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // For lnx::backward: marks the leaf's gradient final and starts every bucket now complete.
  LeafReadyFn hook();
  // Starts the buckets not yet started, waits for all, and sets the gradients: the sum over
  // ranks of each parameter's gradient (undefined where no rank had one); sharded, only the
  // owned parameters' gradients (the others are cleared). Ready for the next backward after.
  void finish();
  // Sharded: every rank receives every parameter's value from its owner. Otherwise nothing.
  void gather_parameters();

  // The parameters this rank updates: all of them unless sharded (same order as params).
  const TensorDict& owned() const { return owned_; }
  bool sharded() const { return options_.shard; }
  int owner(const std::string& name) const;  // −1 for every rank when not sharded
  // Bytes of each bucket's gradients, in the order they are started.
  std::vector<int64_t> bucket_sizes() const;

  struct Stats {
    int64_t reductions = 0;     // finish() calls
    int64_t early_buckets = 0;  // buckets started during a backward (by the hook), not by finish()
    double finish_seconds = 0;  // time in finish(): communication not hidden behind backward
    double gather_seconds = 0;  // time in gather_parameters()
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Bucket {
    DType dtype = DType::f32;
    std::vector<size_t> params;                      // indices into params_, in buffer order (by owner)
    std::vector<int64_t> grad_offset, value_offset;  // per entry of params: where it sits
    std::vector<int64_t> grad_counts, value_counts;  // per rank (one entry when not sharded)
    Tensor buffer, received;                         // [Σ grad_counts] and [grad_counts[rank]]
    Tensor values;                                   // [Σ value_counts] (sharded)
    int pending = 0;
    bool started = false;
    Request request;
  };
  void start(Bucket& b);
  void start_ready_buckets();

  Communicator& comm_;
  ReducerOptions options_;
  std::vector<std::string> names_;
  std::vector<Tensor> params_;
  std::vector<int> owner_;                               // per parameter (0 … size-1, or −1)
  std::vector<size_t> bucket_of_;                        // per parameter
  std::vector<bool> ready_;                              // per parameter, this backward
  std::unordered_map<const TensorImpl*, size_t> index_;  // leaf → parameter
  std::vector<Bucket> buckets_;
  size_t next_to_start_ = 0;
  TensorDict owned_;
  Stats stats_;
};

}  // namespace lnx::dist
