#include "generate/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::generate {

int32_t sample_token(const Tensor& logits, const SamplingOptions& o, Generator& gen) {
  LNX_CHECK(logits.dim() == 1 && logits.size(0) > 0, ShapeError, "[generate] logits must be [V], got {}",
            shape_str(logits.shape()));
  LNX_CHECK(o.temperature >= 0 && o.top_k >= 0 && o.top_p > 0 && o.top_p <= 1, ValueError,
            "[generate] need temperature ≥ 0, top_k ≥ 0, 0 < top_p ≤ 1; got {}, {}, {}", o.temperature, o.top_k,
            o.top_p);
  const std::vector<double> z = to_dtype(logits, DType::f64).to_vector<double>();
  const int64_t V = static_cast<int64_t>(z.size());
  if (o.temperature == 0)
    return static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin());
  // Candidates by decreasing logit (ties: lower id first, so results are reproducible).
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return z[a] > z[b]; });
  int64_t keep = o.top_k > 0 ? std::min(o.top_k, V) : V;
  std::vector<double> p(static_cast<size_t>(keep));
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) {
    p[i] = std::exp((z[order[i]] - z[order[0]]) / o.temperature);
    total += p[i];
  }
  if (o.top_p < 1) {
    double mass = 0;
    int64_t cut = 0;
    while (cut < keep && mass < o.top_p * total) mass += p[cut++];
    keep = std::max<int64_t>(cut, 1);
    total = 0;
    for (int64_t i = 0; i < keep; ++i) total += p[i];
  }
  double u = gen.uniform() * total;
  for (int64_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

std::vector<int32_t> generate(const models::LMModel& model, const std::vector<int32_t>& prompt,
                              const SamplingOptions& options, const std::function<bool(int32_t)>& on_token) {
  LNX_CHECK(!prompt.empty(), ValueError, "[generate] the prompt is empty (give at least one token)");
  const int64_t V = model.config().vocab_size;
  for (int32_t t : prompt)
    LNX_CHECK(t >= 0 && t < V, ValueError, "[generate] prompt token {} is outside the vocabulary [0, {})", t, V);
  NoGradGuard no_grad;
  Generator gen(options.seed);
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  models::ForwardOptions prefill;
  prefill.mode = core::Mode::chunk;
  models::ModelOutput out = model.forward(from_vector(ids, {1, static_cast<int64_t>(ids.size())}), nullptr, prefill);
  models::ForwardOptions decode;
  decode.mode = core::Mode::recurrent;
  std::vector<int32_t> produced;
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const Tensor last = select(select(out.logits, 0, 0), 0, out.logits.size(1) - 1);  // [V]
    const int32_t token = sample_token(last, options, gen);
    produced.push_back(token);
    if (on_token && !on_token(token)) break;
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) != options.stop_tokens.end()) break;
    if (i + 1 == options.max_new_tokens) break;
    out = model.forward(from_vector(std::vector<int64_t>{token}, {1, 1}), &out.state, decode);
  }
  return produced;
}

}  // namespace lnx::generate
