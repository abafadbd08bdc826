// Sampling (see sampling.h): repetition penalty, greedy / temperature / top-k / top-p draws,
// stop-string detection.
#include "generate/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::generate {

void check_options(const SamplingOptions& o) {
  LNX_CHECK(o.temperature >= 0 && o.top_k >= 0 && o.top_p > 0 && o.top_p <= 1, ValueError,
            "[generate] need temperature ≥ 0, top_k ≥ 0, 0 < top_p ≤ 1; got {}, {}, {}", o.temperature, o.top_k,
            o.top_p);
  LNX_CHECK(o.repetition_penalty > 0 && std::isfinite(o.repetition_penalty), ValueError,
            "[generate] repetition_penalty must be a finite number > 0 (1 = off), got {}", o.repetition_penalty);
  LNX_CHECK(o.max_new_tokens >= 0, ValueError, "[generate] max_new_tokens must be ≥ 0, got {}", o.max_new_tokens);
  LNX_CHECK(o.stop_strings.empty() || o.tokenizer != nullptr, ValueError,
            "[generate] {} stop strings were given but no tokenizer to decode the generated tokens with",
            o.stop_strings.size());
  for (const std::string& s : o.stop_strings)
    LNX_CHECK(!s.empty(), ValueError, "[generate] a stop string is empty (it would stop at once)");
}

void apply_repetition_penalty(std::vector<double>& z, const std::vector<int32_t>& history, double penalty) {
  if (penalty == 1.0) return;
  // Each distinct token once, however often it occurs (the CTRL / HF rule).
  std::vector<char> seen(z.size(), 0);
  for (int32_t t : history) {
    if (t < 0 || static_cast<size_t>(t) >= z.size() || seen[static_cast<size_t>(t)]) continue;
    seen[static_cast<size_t>(t)] = 1;
    double& v = z[static_cast<size_t>(t)];
    v = v > 0 ? v / penalty : v * penalty;
  }
}

int32_t sample_token(const Tensor& logits, const SamplingOptions& o, Generator& gen,
                     const std::vector<int32_t>& history) {
  LNX_CHECK(logits.dim() == 1 && logits.size(0) > 0, ShapeError, "[generate] logits must be [V], got {}",
            shape_str(logits.shape()));
  LNX_CHECK(o.temperature >= 0 && o.top_k >= 0 && o.top_p > 0 && o.top_p <= 1, ValueError,
            "[generate] need temperature ≥ 0, top_k ≥ 0, 0 < top_p ≤ 1; got {}, {}, {}", o.temperature, o.top_k,
            o.top_p);
  LNX_CHECK(o.repetition_penalty > 0, ValueError, "[generate] repetition_penalty must be > 0, got {}",
            o.repetition_penalty);
  std::vector<double> z = to_dtype(logits, DType::f64).to_vector<double>();
  // Models often have more embedding rows than their tokenizer has tokens (vocabularies padded
  // to a multiple): ids the tokenizer cannot decode are never drawn.
  if (o.tokenizer && o.tokenizer->vocab_size() < static_cast<int64_t>(z.size()))
    z.resize(static_cast<size_t>(o.tokenizer->vocab_size()));
  for (size_t i = 0; i < z.size(); ++i)
    LNX_CHECK(!std::isnan(z[i]) && z[i] != INFINITY, ValueError,
              "[generate] the model's logits are not finite (logit {} of token {}): its weights or activations "
              "overflowed",
              z[i], i);
  apply_repetition_penalty(z, history, o.repetition_penalty);
  const int64_t V = static_cast<int64_t>(z.size());
  if (o.temperature == 0) return static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin());
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
  double u = gen.uniform() * total;  // the one draw of this call
  for (int64_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

StopStringMatcher::StopStringMatcher(const SamplingOptions& options)
    : tokenizer_(options.tokenizer), stops_(options.stop_strings) {
  for (const std::string& s : stops_) longest_ = std::max(longest_, s.size());
}

bool StopStringMatcher::push(int32_t token) {
  if (stops_.empty() || tokenizer_ == nullptr) return false;
  const size_t before = text_.size();
  // decode of one token appended: both tokenizers decode a list as the concatenation of its
  // tokens' bytes, so text_ is byte for byte decode(all tokens so far).
  text_ += tokenizer_->decode({token});
  // A new occurrence must end inside the new bytes, so it starts at most longest_ − 1 before.
  const size_t from = before >= longest_ ? before - (longest_ - 1) : 0;
  for (const std::string& s : stops_)
    if (text_.find(s, from) != std::string::npos) return true;
  return false;
}

std::string trim_at_stop_string(const std::string& text, const std::vector<std::string>& stop_strings) {
  size_t cut = text.size();
  for (const std::string& s : stop_strings) {
    if (s.empty()) continue;
    cut = std::min(cut, text.find(s));  // npos is larger than any position
  }
  return text.substr(0, cut);
}

}  // namespace lnx::generate
