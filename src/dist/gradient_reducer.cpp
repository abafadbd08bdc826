#include "dist/gradient_reducer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <numeric>
#include <unordered_map>

#include "tensor/error.h"

namespace lnx::dist {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Copies n elements of dtype d between raw buffers.
void copy_elements(void* to, const void* from, int64_t n, DType d) {
  if (n > 0) std::memcpy(to, from, static_cast<size_t>(n) * dtype_size(d));
}

char* at(const Tensor& t, int64_t element) {
  return static_cast<char*>(t.raw_data()) + static_cast<size_t>(element) * dtype_size(t.dtype());
}

}  // namespace

GradientReducer::GradientReducer(Communicator& comm, const TensorDict& params, ReducerOptions options)
    : comm_(comm), options_(options) {
  LNX_CHECK(options.bucket_bytes > 0, ValueError, "[GradientReducer] bucket_bytes must be positive, got {}",
            options.bucket_bytes);
  const int ranks = comm.size();
  for (const auto& [name, p] : params) {
    LNX_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, DTypeError,
              "[GradientReducer] parameter '{}' is {}; only f32 and f64 parameters are reduced", name,
              dtype_name(p.dtype()));
    LNX_CHECK(p.is_contiguous(), ValueError, "[GradientReducer] parameter '{}' is not contiguous", name);
    names_.push_back(name);
    params_.push_back(p);
  }
  const size_t n = params_.size();
  // Owners: largest first, each to the least-loaded rank (ties: the lower rank).
  owner_.assign(n, -1);
  if (options.shard) {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return params_[a].numel() > params_[b].numel(); });
    std::vector<int64_t> load(static_cast<size_t>(ranks), 0);
    for (size_t i : order) {
      const auto least = std::min_element(load.begin(), load.end()) - load.begin();
      owner_[i] = static_cast<int>(least);
      load[static_cast<size_t>(least)] += params_[i].numel();
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (!options.shard || owner_[i] == comm.rank()) owned_.insert(names_[i], params_[i]);

  // Buckets over the parameters in reverse order.
  bucket_of_.assign(n, 0);
  std::vector<std::vector<size_t>> members;
  int64_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const int64_t b = params_[k].numel() * static_cast<int64_t>(dtype_size(params_[k].dtype()));
    if (members.empty() || bytes >= options.bucket_bytes ||
        params_[members.back().front()].dtype() != params_[k].dtype()) {
      members.emplace_back();
      bytes = 0;
    }
    members.back().push_back(k);
    bytes += b;
  }
  const int segments = options.shard ? ranks : 1;
  for (auto& m : members) {
    Bucket bucket;
    bucket.dtype = params_[m.front()].dtype();
    // Buffer order: by owner; each owner's part is [its gradients…, their flags…].
    std::stable_sort(m.begin(), m.end(), [&](size_t a, size_t b) { return owner_[a] < owner_[b]; });
    bucket.params = m;
    bucket.grad_offset.resize(m.size());
    bucket.value_offset.resize(m.size());
    bucket.grad_counts.assign(static_cast<size_t>(segments), 0);
    bucket.value_counts.assign(static_cast<size_t>(segments), 0);
    int64_t grad_at = 0, value_at = 0;
    for (int s = 0; s < segments; ++s) {
      std::vector<size_t> part;
      for (size_t e = 0; e < m.size(); ++e)
        if (!options.shard || owner_[m[e]] == s) part.push_back(e);
      const int64_t grad_start = grad_at;
      for (size_t e : part) {
        bucket.grad_offset[e] = grad_at;
        bucket.value_offset[e] = value_at;
        grad_at += params_[m[e]].numel();
        value_at += params_[m[e]].numel();
      }
      grad_at += static_cast<int64_t>(part.size());  // the flags
      bucket.grad_counts[static_cast<size_t>(s)] = grad_at - grad_start;
      int64_t values = 0;
      for (size_t e : part) values += params_[m[e]].numel();
      bucket.value_counts[static_cast<size_t>(s)] = values;
    }
    bucket.buffer = zeros({grad_at}, bucket.dtype);
    if (options.shard) {
      bucket.received = zeros({bucket.grad_counts[static_cast<size_t>(comm.rank())]}, bucket.dtype);
      bucket.values = zeros({value_at}, bucket.dtype);
    }
    bucket.pending = static_cast<int>(m.size());
    for (size_t idx : m) bucket_of_[idx] = buckets_.size();
    buckets_.push_back(std::move(bucket));
  }
  ready_.assign(n, false);
  for (size_t i = 0; i < n; ++i) index_[params_[i].impl()] = i;
}

GradientReducer::~GradientReducer() {
  if (std::uncaught_exceptions() == 0) return;
  // Kept alive to the end of the process: other ranks may still be sending into them.
  static std::vector<Tensor>* kept = new std::vector<Tensor>;
  for (Bucket& b : buckets_)
    for (const Tensor* t : {&b.buffer, &b.received, &b.values})
      if (t->defined()) kept->push_back(*t);
}

LeafReadyFn GradientReducer::hook() {
  return [this](const TensorImpl* leaf) {
    const auto it = index_.find(leaf);
    if (it == index_.end() || ready_[it->second]) return;  // not a parameter of this model
    ready_[it->second] = true;
    if (--buckets_[bucket_of_[it->second]].pending == 0) {
      const size_t before = next_to_start_;
      start_ready_buckets();
      stats_.early_buckets += static_cast<int64_t>(next_to_start_ - before);
    }
  };
}

void GradientReducer::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].pending == 0) start(buckets_[next_to_start_++]);
  // Let the collectives in flight move on while the backward continues.
  for (Bucket& b : buckets_)
    if (b.request.active()) comm_.test(b.request);
}

void GradientReducer::start(Bucket& b) {
  // Pack: each parameter's gradient (zeros where it has none) and its flag.
  const int segments = static_cast<int>(b.grad_counts.size());
  std::vector<int64_t> flag_at(static_cast<size_t>(segments));
  int64_t end = 0;
  for (int s = 0; s < segments; ++s) {
    end += b.grad_counts[static_cast<size_t>(s)];
    int64_t flags = 0;
    for (size_t idx : b.params)
      if (!options_.shard || owner_[idx] == s) ++flags;
    flag_at[static_cast<size_t>(s)] = end - flags;
  }
  std::vector<int64_t> next_flag = flag_at;
  for (size_t e = 0; e < b.params.size(); ++e) {
    const Tensor& p = params_[b.params[e]];
    const Tensor g = p.grad();
    const int s = options_.shard ? owner_[b.params[e]] : 0;
    char* flag = at(b.buffer, next_flag[static_cast<size_t>(s)]++);
    if (g.defined()) {
      const Tensor c = g.dtype() == b.dtype ? g.contiguous() : g.to(b.dtype).contiguous();
      copy_elements(at(b.buffer, b.grad_offset[e]), c.raw_data(), c.numel(), b.dtype);
    } else {
      std::memset(at(b.buffer, b.grad_offset[e]), 0, static_cast<size_t>(p.numel()) * dtype_size(b.dtype));
    }
    const double one = g.defined() ? 1.0 : 0.0;
    if (b.dtype == DType::f32) {
      const float f = static_cast<float>(one);
      std::memcpy(flag, &f, sizeof f);
    } else {
      std::memcpy(flag, &one, sizeof one);
    }
  }
  b.started = true;
  if (options_.shard)
    b.request = comm_.reduce_scatter_sum_start(b.buffer.raw_data(), b.received.raw_data(), b.grad_counts, b.dtype,
                                               "the reduce-scatter of gradients");
  else
    b.request =
        comm_.allreduce_sum_start(b.buffer.raw_data(), b.buffer.numel(), b.dtype, "the all-reduce of gradients");
}

void GradientReducer::finish() {
  const auto t0 = Clock::now();
  for (Bucket& b : buckets_) b.pending = 0;
  start_ready_buckets();
  NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    comm_.wait(b.request);
    // The summed part this rank keeps: the whole buffer, or its own segment.
    const Tensor& part = options_.shard ? b.received : b.buffer;
    int64_t part_start = 0, flags_start = 0, count = 0;
    if (options_.shard)
      for (int s = 0; s < comm_.rank(); ++s) part_start += b.grad_counts[static_cast<size_t>(s)];
    for (size_t idx : b.params)
      if (!options_.shard || owner_[idx] == comm_.rank()) ++count;
    flags_start = part.numel() - count;
    int64_t flag = 0;
    for (size_t e = 0; e < b.params.size(); ++e) {
      const Tensor& p = params_[b.params[e]];
      if (options_.shard && owner_[b.params[e]] != comm_.rank()) {
        p.zero_grad();
        continue;
      }
      const char* f = at(part, flags_start + flag++);
      const double touched = b.dtype == DType::f32 ? static_cast<double>(*reinterpret_cast<const float*>(f))
                                                   : *reinterpret_cast<const double*>(f);
      if (touched == 0) {
        p.zero_grad();
        continue;
      }
      Tensor g = zeros(p.shape(), b.dtype);
      copy_elements(g.raw_data(), at(part, b.grad_offset[e] - part_start), p.numel(), b.dtype);
      p.set_grad(g);
    }
    b.started = false;
  }
  next_to_start_ = 0;
  for (Bucket& b : buckets_) b.pending = static_cast<int>(b.params.size());
  std::fill(ready_.begin(), ready_.end(), false);
  stats_.reductions++;
  stats_.finish_seconds += seconds_since(t0);
}

void GradientReducer::gather_parameters() {
  if (!options_.shard) return;
  const auto t0 = Clock::now();
  std::vector<Request> requests;
  for (Bucket& b : buckets_) {
    for (size_t e = 0; e < b.params.size(); ++e)
      if (owner_[b.params[e]] == comm_.rank())
        copy_elements(at(b.values, b.value_offset[e]), params_[b.params[e]].raw_data(), params_[b.params[e]].numel(),
                      b.dtype);
    int64_t mine = 0;
    for (int s = 0; s < comm_.rank(); ++s) mine += b.value_counts[static_cast<size_t>(s)];
    requests.push_back(comm_.allgather_start(at(b.values, mine), b.values.raw_data(), b.value_counts, b.dtype,
                                             "the all-gather of parameters"));
  }
  comm_.wait_all(requests);
  for (Bucket& b : buckets_)
    for (size_t e = 0; e < b.params.size(); ++e)
      if (owner_[b.params[e]] != comm_.rank())
        copy_elements(params_[b.params[e]].raw_data(), at(b.values, b.value_offset[e]), params_[b.params[e]].numel(),
                      b.dtype);
  stats_.gather_seconds += seconds_since(t0);
}

int GradientReducer::owner(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return owner_[i];
  throw ValueError(fmt::format("[GradientReducer] no parameter named '{}'", name));
}

std::vector<int64_t> GradientReducer::bucket_sizes() const {
  std::vector<int64_t> sizes;
  for (const Bucket& b : buckets_) {
    int64_t n = 0;
    for (size_t idx : b.params) n += params_[idx].numel();
    sizes.push_back(n * static_cast<int64_t>(dtype_size(b.dtype)));
  }
  return sizes;
}

}  // namespace lnx::dist
