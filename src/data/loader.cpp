// WindowSource (token windows as [B, T] i64 batches) and the prefetching Loader.
#include "data/loader.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "data/loader_rng.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::data {

// ---- WindowSource ----

WindowSource::WindowSource(TokenFile file, int64_t batch_size, int64_t seq_len, uint64_t seed, Order order)
    : file_(std::move(file)), batch_size_(batch_size), seq_len_(seq_len), seed_(seed), order_(order) {
  LNX_CHECK(batch_size >= 1 && seq_len >= 1, ValueError,
            "[WindowSource] batch_size and seq_len must be >= 1, got batch_size {} and seq_len {}", batch_size,
            seq_len);
  LNX_CHECK(file_.size() >= seq_len + 1, ValueError,
            "[WindowSource] a window needs seq_len + 1 = {} tokens but '{}' holds {}", seq_len + 1, file_.path(),
            file_.size());
}

int64_t WindowSource::window_start(int64_t index, int64_t row) const {
  LNX_CHECK(index >= 0 && row >= 0 && row < batch_size_, ValueError,
            "[WindowSource] batch index must be >= 0 and row in [0, {}), got index {} and row {}", batch_size_, index,
            row);
  if (order_ == Order::random) {
    const uint64_t starts = static_cast<uint64_t>(file_.size() - seq_len_);  // positions 0 .. size-T-1
    return static_cast<int64_t>(below(counter_hash(seed_, uint64_t(index), uint64_t(row)), starts));
  }
  const uint64_t windows = static_cast<uint64_t>(windows_per_epoch());
  const uint64_t draw = uint64_t(index) * uint64_t(batch_size_) + uint64_t(row);
  const uint64_t epoch = draw / windows;
  // The permutation's own seed mixes the epoch in, so each epoch is shuffled afresh; a tag
  // keeps it apart from the random mode's hashes of the same seed.
  const FeistelPermutation perm(windows, counter_hash(seed_, 0x45504f4348ull /* "EPOCH" */, epoch));
  return static_cast<int64_t>(perm(draw % windows)) * seq_len_;
}

Batch WindowSource::batch(int64_t index) const {
  const int64_t B = batch_size_, T = seq_len_;
  Batch out;
  out.index = index;
  out.ids = Tensor::empty({B, T}, DType::i64);
  out.targets = Tensor::empty({B, T}, DType::i64);
  int64_t* ids = out.ids.data<int64_t>();
  int64_t* targets = out.targets.data<int64_t>();
  std::vector<int64_t> window(static_cast<size_t>(T + 1));
  for (int64_t b = 0; b < B; ++b) {
    file_.copy(window_start(index, b), T + 1, window.data());
    for (int64_t t = 0; t < T; ++t) {
      ids[b * T + t] = window[t];
      targets[b * T + t] = window[t + 1];
    }
  }
  return out;
}

// ---- Loader ----

Loader::Loader(Source source, int64_t start_index, int64_t prefetch) : source_(std::move(source)), prefetch_(prefetch) {
  LNX_CHECK(static_cast<bool>(source_), ValueError, "[Loader] the source function is empty");
  LNX_CHECK(start_index >= 0 && prefetch >= 1, ValueError,
            "[Loader] start_index must be >= 0 and prefetch >= 1, got start_index {} and prefetch {}", start_index,
            prefetch);
  start(start_index);
}

Loader::~Loader() { stop(); }

Batch shard_batch(const Batch& global, int64_t rank, int64_t ranks) {
  LNX_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, ValueError, "[shard_batch] rank {} of {}", rank, ranks);
  LNX_CHECK(global.ids.dim() == 2 && global.targets.shape() == global.ids.shape(), ShapeError,
            "[shard_batch] ids must be [B, T] with targets alike, got {} and {}", shape_str(global.ids.shape()),
            shape_str(global.targets.shape()));
  Batch s;
  s.index = global.index;
  {
    const std::vector<int64_t> t = global.targets.to_vector<int64_t>();
    s.global_scored = std::count_if(t.begin(), t.end(), [](int64_t v) { return v != -100; });
  }
  if (global.cu_seqlens.defined()) {
    const std::vector<int64_t> cu = global.cu_seqlens.to_vector<int64_t>();
    const int64_t n = static_cast<int64_t>(cu.size()) - 1, P = global.ids.size(1);
    // Sequence boundary nearest to the share r·P/ranks.
    auto boundary = [&](int64_t r) {
      const double want = static_cast<double>(P) * static_cast<double>(r) / static_cast<double>(ranks);
      int64_t best = 0;
      for (int64_t k = 0; k <= n; ++k)
        if (std::abs(static_cast<double>(cu[static_cast<size_t>(k)]) - want) <
            std::abs(static_cast<double>(cu[static_cast<size_t>(best)]) - want))
          best = k;
      return best;
    };
    const int64_t first = rank == 0 ? 0 : boundary(rank), last = rank + 1 == ranks ? n : boundary(rank + 1);
    const int64_t begin = cu[static_cast<size_t>(first)], end = cu[static_cast<size_t>(std::max(first, last))];
    s.ids = slice(global.ids, 1, begin, end).contiguous();
    s.targets = slice(global.targets, 1, begin, end).contiguous();
    if (global.mask.defined()) s.mask = slice(global.mask, 1, begin, end).contiguous();
    std::vector<int64_t> local{0};
    for (int64_t k = first; k < last; ++k) local.push_back(cu[static_cast<size_t>(k + 1)] - begin);
    s.cu_seqlens = from_vector(local, {static_cast<int64_t>(local.size())});
    s.global_position = begin;
    return s;
  }
  const int64_t B = global.ids.size(0), T = global.ids.size(1);
  const int64_t begin = B / ranks * rank + std::min(rank, B % ranks);
  const int64_t end = begin + B / ranks + (rank < B % ranks ? 1 : 0);
  s.ids = slice(global.ids, 0, begin, end).contiguous();
  s.targets = slice(global.targets, 0, begin, end).contiguous();
  if (global.mask.defined()) s.mask = slice(global.mask, 0, begin, end).contiguous();
  s.global_position = begin * T;
  return s;
}

void Loader::start(int64_t index) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
    queue_.clear();
    failed_ = nullptr;
    next_index_ = index;
  }
  thread_ = std::thread(&Loader::produce, this, index);
}

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Loader::restart(int64_t index) {
  LNX_CHECK(index >= 0, ValueError, "[Loader::restart] index must be >= 0, got {}", index);
  stop();
  start(index);
}

void Loader::produce(int64_t first_index) {
  for (int64_t i = first_index;; ++i) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || static_cast<int64_t>(queue_.size()) < prefetch_; });
      if (stopping_) return;
    }
    // The source runs without the lock, so next() can hand out ready batches meanwhile.
    Item item;
    try {
      item.batch = source_(i);
      item.batch.index = i;
    } catch (...) {
      item.error = std::current_exception();
    }
    const bool failed = static_cast<bool>(item.error);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      queue_.push_back(std::move(item));
    }
    changed_.notify_all();
    if (failed) return;  // nothing after a failed index is produced
  }
}

Batch Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (failed_) std::rethrow_exception(failed_);
  changed_.wait(lock, [&] { return !queue_.empty(); });
  Item item = std::move(queue_.front());
  queue_.pop_front();
  if (item.error) {
    failed_ = item.error;
    std::rethrow_exception(failed_);
  }
  ++next_index_;
  lock.unlock();
  changed_.notify_all();  // the producer may be waiting for room
  return std::move(item.batch);
}

int64_t Loader::next_index() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_index_;
}

}  // namespace lnx::data
