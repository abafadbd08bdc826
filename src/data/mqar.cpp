// MQAR batch generation and argmax accuracy (definitions in mqar.h).
#include "data/mqar.h"

#include <cmath>
#include <numeric>
#include <vector>

#include "data/loader_rng.h"
#include "tensor/error.h"

namespace lnx::data {

namespace {

constexpr int64_t kIgnore = -100;

// Draws `count` distinct indices from [0, n) without replacement, each draw proportional to
// the weights still in play (what numpy's choice(replace=False, p=…) samples).
std::vector<int64_t> weighted_without_replacement(std::vector<double> weights, int64_t count, Generator& gen) {
  std::vector<int64_t> picked;
  picked.reserve(static_cast<size_t>(count));
  double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  for (int64_t d = 0; d < count; ++d) {
    double u = gen.uniform() * total;
    int64_t choice = -1;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (weights[i] <= 0.0) continue;
      choice = static_cast<int64_t>(i);  // the last live index absorbs rounding at the end
      if (u < weights[i]) break;
      u -= weights[i];
    }
    picked.push_back(choice);
    total -= weights[static_cast<size_t>(choice)];
    weights[static_cast<size_t>(choice)] = 0.0;
  }
  return picked;
}

// `count` distinct tokens uniform from [low, high) (partial Fisher–Yates).
std::vector<int64_t> distinct_tokens(int64_t low, int64_t high, int64_t count, Generator& gen) {
  std::vector<int64_t> pool(static_cast<size_t>(high - low));
  std::iota(pool.begin(), pool.end(), low);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = i + static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(high - low - i));
    std::swap(pool[static_cast<size_t>(i)], pool[static_cast<size_t>(j)]);
  }
  pool.resize(static_cast<size_t>(count));
  return pool;
}

}  // namespace

void validate(const MqarConfig& c) {
  LNX_CHECK(c.seq_len >= 4 && c.seq_len % 2 == 0, ValueError, "[mqar] seq_len must be even and >= 4, got {}",
            c.seq_len);
  LNX_CHECK(c.num_kv_pairs >= 1 && 4 * c.num_kv_pairs <= c.seq_len, ValueError,
            "[mqar] num_kv_pairs must be in [1, seq_len / 4 = {}], got {}", c.seq_len / 4, c.num_kv_pairs);
  LNX_CHECK(c.vocab_size >= 4 && c.num_kv_pairs < c.vocab_size / 2, ValueError,
            "[mqar] vocab_size {} leaves {} keys in [1, vocab_size / 2), fewer than num_kv_pairs = {}", c.vocab_size,
            c.vocab_size / 2 - 1, c.num_kv_pairs);
  LNX_CHECK(c.power_a > 0.0 && std::isfinite(c.power_a), ValueError, "[mqar] power_a must be > 0, got {}", c.power_a);
}

Batch mqar_batch(const MqarConfig& cfg, int64_t batch_size, uint64_t seed, int64_t index) {
  validate(cfg);
  LNX_CHECK(batch_size >= 1 && index >= 0, ValueError,
            "[mqar] batch_size must be >= 1 and index >= 0, got batch_size {} and index {}", batch_size, index);
  const int64_t B = batch_size, T = cfg.seq_len, V = cfg.vocab_size, P = cfg.num_kv_pairs;
  const int64_t context = 2 * P, slots = (T - context) / 2;

  std::vector<double> gap_weights(static_cast<size_t>(slots));
  for (int64_t g = 0; g < slots; ++g) gap_weights[g] = std::pow(static_cast<double>(g + 1), cfg.power_a - 1.0);

  Batch out;
  out.index = index;
  out.ids = Tensor::empty({B, T}, DType::i64);
  out.targets = Tensor::empty({B, T}, DType::i64);
  out.mask = Tensor::empty({B, T}, DType::f32);
  for (int64_t b = 0; b < B; ++b) {
    Generator gen(counter_hash(seed, 0x4d514152ull /* "MQAR" */, uint64_t(index), uint64_t(b)));
    int64_t* ids = out.ids.data<int64_t>() + b * T;
    int64_t* targets = out.targets.data<int64_t>() + b * T;
    float* mask = out.mask.data<float>() + b * T;
    const std::vector<int64_t> keys = distinct_tokens(1, V / 2, P, gen);
    const std::vector<int64_t> values = distinct_tokens(V / 2, V, P, gen);
    const std::vector<int64_t> gaps = weighted_without_replacement(gap_weights, P, gen);

    std::vector<bool> placed(static_cast<size_t>(T), false);
    for (int64_t t = 0; t < T; ++t) targets[t] = kIgnore;
    for (int64_t i = 0; i < P; ++i) {
      ids[2 * i] = keys[i];
      ids[2 * i + 1] = values[i];
      placed[2 * i] = placed[2 * i + 1] = true;
      const int64_t query = context + 2 * gaps[i];
      ids[query] = keys[i];
      targets[query] = values[i];
      placed[query] = true;
    }
    for (int64_t t = 0; t < T; ++t) {
      if (!placed[t]) ids[t] = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(V));
      mask[t] = targets[t] == kIgnore ? 0.0f : 1.0f;
    }
  }
  return out;
}

double mqar_accuracy(const Tensor& logits, const Tensor& targets) {
  LNX_CHECK(logits.defined() && targets.defined() && logits.dim() == 3 && targets.dim() == 2 &&
                logits.size(0) == targets.size(0) && logits.size(1) == targets.size(1),
            ShapeError, "[mqar_accuracy] expected logits [B,T,V] and targets [B,T], got {} and {}",
            logits.defined() ? shape_str(logits.shape()) : "undefined",
            targets.defined() ? shape_str(targets.shape()) : "undefined");
  LNX_CHECK(targets.dtype() == DType::i64, DTypeError, "[mqar_accuracy] targets must be i64, got {}",
            dtype_name(targets.dtype()));
  const int64_t rows = targets.numel(), V = logits.size(2);
  const Tensor target_c = targets.contiguous();
  const int64_t* tg = target_c.data<int64_t>();
  int64_t scored = 0, correct = 0;
  dispatch_float(logits.dtype(), "mqar_accuracy", [&]<typename S>() {
    const Tensor lc = logits.detach().contiguous();
    const S* l = lc.data<S>();
    for (int64_t r = 0; r < rows; ++r) {
      if (tg[r] == kIgnore) continue;
      ++scored;
      const S* row = l + r * V;
      int64_t best = 0;
      for (int64_t v = 1; v < V; ++v)
        if (row[v] > row[best]) best = v;
      if (V > 0 && best == tg[r]) ++correct;
    }
  });
  return scored == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(scored);
}

}  // namespace lnx::data
