// Batches for training: windows of a token file as (ids, targets) pairs, and a Loader that
// prefetches batches on a background thread.
//
// Dimension letters: B batch rows, T tokens per row (the model's context). A window is T + 1
// consecutive tokens w[0..T]; ids = w[0..T-1] and targets = w[1..T] (targets[t] is the token
// that follows ids[t]).
//
// Reproducibility: batch k is a pure function of (seed, k) — see loader_rng.h — so a run
// resumed at step k (Loader start index k) sees exactly the batches an uninterrupted run sees,
// whatever the prefetch depth or thread timing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "data/token_file.h"
#include "tensor/tensor.h"

namespace lnx::data {

struct Batch {
  Tensor ids, targets;  // [B, T] i64; targets == -100 marks a position the loss ignores
  Tensor mask;          // optional; undefined unless the source says otherwise (MQAR: [B, T] f32,
                        // 1 at scored positions)
  Tensor cu_seqlens;    // optional: [N + 1] when ids [1, P] packs N sequences (SFT)
  int64_t index = 0;    // which batch of the source this is
  // A rank's shard of a global batch (shard_batch): the scored targets (≠ −100) of the whole
  // global batch, and where this shard's first token sits in it (row-major position). −1 and 0
  // for a whole batch.
  int64_t global_scored = -1;
  int64_t global_position = 0;
};

// Rank `rank` of `ranks`' share of a global batch, for data parallelism: rows [B, T] are dealt
// in contiguous, nearly equal ranges (the first B % ranks ranks get one more); a packed batch
// [1, P] is cut at the sequence boundaries nearest to equal shares of its tokens. A shard may
// be empty (B < ranks, or fewer sequences than ranks). The shards of all ranks together are
// the global batch, whatever the number of ranks.
Batch shard_batch(const Batch& global, int64_t rank, int64_t ranks);

// Random windows (or, in epoch mode, a seeded shuffle of non-overlapping windows) of a file.
class WindowSource {
 public:
  enum class Order {
    // Every row starts at an independent uniform position in [0, size - T - 1]; windows may
    // overlap and repeat. Row b of batch k depends only on (seed, k, b).
    random,
    // The file cut into W = (size - 1) / T non-overlapping windows (window w covers tokens
    // [w*T, w*T + T]; neighbours share one boundary token, as one's last target and the
    // next's first input). Draw g = k*B + b belongs to epoch e = g / W and takes window
    // perm_e(g mod W), perm_e a seeded permutation that is a pure function of (seed, e): each
    // epoch visits every window exactly once, in a fresh order. A tail of fewer than T
    // tokens after the last whole window is never used.
    epoch,
  };

  // ValueError unless batch_size >= 1, seq_len >= 1 and the file holds at least seq_len + 1
  // tokens.
  WindowSource(TokenFile file, int64_t batch_size, int64_t seq_len, uint64_t seed, Order order = Order::random);

  Batch batch(int64_t index) const;  // index >= 0
  Batch operator()(int64_t index) const { return batch(index); }

  // Token position where row `row` of batch `index` starts (the first of its T + 1 tokens).
  int64_t window_start(int64_t index, int64_t row) const;

  int64_t batch_size() const { return batch_size_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t windows_per_epoch() const { return (file_.size() - 1) / seq_len_; }  // epoch mode's W
  const TokenFile& file() const { return file_; }

 private:
  TokenFile file_;
  int64_t batch_size_, seq_len_;
  uint64_t seed_;
  Order order_;
};

// Runs a source on a background thread, keeping up to `prefetch` batches ready. next() returns
// the source's batches start_index, start_index + 1, … in order.
//
// - If the source throws for index i, batches before i are still delivered; then next()
//   rethrows that exception (and keeps rethrowing it on later calls); the thread stops.
// - The destructor stops the thread: it wakes a producer waiting on a full queue at once, and
//   otherwise waits for the source call in progress to return (a source call is not
//   interrupted).
// - restart(index) drops the prefetched batches and continues from index (resume, or jumping
//   to a new position).
class Loader {
 public:
  using Source = std::function<Batch(int64_t index)>;

  // ValueError unless source is set, start_index >= 0 and prefetch >= 1.
  explicit Loader(Source source, int64_t start_index = 0, int64_t prefetch = 4);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch, waiting for the producer if none is ready.
  Batch next();
  // Index of the batch the next call to next() returns (save it in checkpoints).
  int64_t next_index() const;
  // Discards prefetched batches and restarts production at index.
  void restart(int64_t index);

 private:
  struct Item {
    Batch batch;
    std::exception_ptr error;
  };
  void start(int64_t index);
  void stop();
  void produce(int64_t first_index);

  Source source_;
  int64_t prefetch_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;  // queue gained or lost an item, or stopping_ was set
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::exception_ptr failed_;  // the error next() has already rethrown once
  int64_t next_index_ = 0;
  std::thread thread_;
};

}  // namespace lnx::data
