#include "modules/moe.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

SparseMoE::SparseMoE(int64_t dim, const MoeConfig& c, int64_t default_hidden, Generator& gen, double std)
    : gate(add_module("gate", std::make_unique<Linear>(dim, c.num_experts, false, gen, std))),
      dim_(dim),
      top_k_(c.top_k),
      hidden_(c.expert_hidden > 0 ? c.expert_hidden : default_hidden),
      norm_topk_prob_(c.norm_topk_prob) {
  LNX_CHECK(c.num_experts >= 1, ValueError, "[moe] num_experts = {}: expected >= 1", c.num_experts);
  LNX_CHECK(c.top_k >= 1 && c.top_k <= c.num_experts, ValueError, "[moe] top_k = {}: expected 1 … num_experts = {}",
            c.top_k, c.num_experts);
  LNX_CHECK(hidden_ >= 1, ValueError, "[moe] expert_hidden = {}: expected >= 1", hidden_);
  for (int64_t e = 0; e < c.num_experts; ++e)
    experts.push_back(&add_module("experts." + std::to_string(e), std::make_unique<SwiGLU>(dim, hidden_, gen, std)));
  if (c.shared_expert_hidden > 0) {
    shared_expert = &add_module("shared_expert", std::make_unique<SwiGLU>(dim, c.shared_expert_hidden, gen, std));
    if (c.shared_expert_gate)
      shared_expert_gate = &add_module("shared_expert_gate", std::make_unique<Linear>(dim, 1, false, gen, std));
  }
}

Tensor SparseMoE::forward(const Tensor& x) const {
  LNX_CHECK(x.dim() >= 1 && x.size(x.dim() - 1) == dim_, ShapeError, "[moe] x is {}: expected [..., {}]",
            shape_str(x.shape()), dim_);
  const Shape shape = x.shape();
  const Tensor xs = reshape(x, {-1, dim_});  // [N, D]
  const int64_t N = xs.size(0), E = static_cast<int64_t>(experts.size()), k = top_k_;
  const Tensor probs = softmax(gate.forward(xs), -1);  // [N, E]
  // The k most probable experts of each token (ties: the lower index, as torch.topk on CPU).
  const std::vector<double> p = to_dtype(probs.detach(), DType::f64).to_vector<double>();
  std::vector<int64_t> chosen(static_cast<size_t>(N * k));
  std::vector<int64_t> order(static_cast<size_t>(E));
  for (int64_t n = 0; n < N; ++n) {
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
      const double pa = p[n * E + a], pb = p[n * E + b];
      return pa > pb || (pa == pb && a < b);
    });
    std::copy(order.begin(), order.begin() + k, chosen.begin() + n * k);
  }
  Tensor weights = gather(probs, 1, from_vector(chosen, {N, k}));  // [N, k]
  if (norm_topk_prob_) weights = div(weights, sum(weights, {1}, true));
  // Each expert on its tokens; row r of `routed` is slot (token, j) at position[token·k + j].
  std::vector<int64_t> position(static_cast<size_t>(N * k));
  TensorList outputs;
  int64_t rows = 0;
  for (int64_t e = 0; e < E; ++e) {
    std::vector<int64_t> tokens;
    for (int64_t s = 0; s < N * k; ++s)
      if (chosen[s] == e) {
        tokens.push_back(s / k);
        position[s] = rows++;
      }
    if (tokens.empty()) continue;
    const int64_t count = static_cast<int64_t>(tokens.size());
    outputs.push_back(experts[e]->forward(index_select(xs, 0, from_vector(tokens, {count}))));
  }
  const Tensor routed = concat(outputs, 0);  // [N·k, D]
  const Tensor picked = reshape(index_select(routed, 0, from_vector(position, {N * k})), {N, k, dim_});
  Tensor y = sum(mul(picked, unsqueeze(weights, 2)), {1});  // [N, D]
  if (shared_expert) {
    Tensor s = shared_expert->forward(xs);
    if (shared_expert_gate) s = mul(s, sigmoid(shared_expert_gate->forward(xs)));
    y = add(y, s);
  }
  return reshape(y, shape);
}

double SparseMoE::flops_per_token() const {
  const double D = static_cast<double>(dim_);
  double f = 2.0 * D * static_cast<double>(experts.size()) + 2.0 * 3.0 * D * static_cast<double>(hidden_ * top_k_);
  if (shared_expert) f += 2.0 * 3.0 * D * static_cast<double>(shared_expert->hidden());
  if (shared_expert_gate) f += 2.0 * D;
  return f;
}

}  // namespace lnx::modules
