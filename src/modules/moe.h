// Sparse mixture-of-experts feed-forward (Shazeer et al. 2017; the top-k routed SwiGLU experts of
// Mixtral and Qwen-MoE), with an optional shared expert gated by a sigmoid (Qwen2-MoE,
// Qwen3-Next). Dimension letters: N tokens, D width, E experts, k experts per token, F expert
// hidden width.
//
//   x [N, D] → router logits = gate(x) [N, E] → p = softmax → the k largest p per token
//     (renormalised to sum 1 with norm_topk_prob) → y = Σ_j p_j · expert_{i_j}(x)
//     [+ σ(shared_expert_gate(x)) · shared_expert(x)]
//
// The routing choice is discrete; gradients reach the router through the chosen probabilities,
// the experts through the tokens routed to them. Each expert runs once on its own tokens
// (gathered rows), so the cost is k experts per token, not E.
#pragma once

#include <vector>

#include "core/fields.h"
#include "modules/mlp.h"

namespace lnx::modules {

// A block's MoE options (num_experts 0: the block keeps its dense SwiGLU MLP).
struct MoeConfig {
  int64_t num_experts = 0;
  int64_t top_k = 2;
  int64_t expert_hidden = 0;
  int64_t shared_expert_hidden = 0;
  bool norm_topk_prob = true;
  bool shared_expert_gate = true;

  template <class V> void visit(V&& v) {
    v("num_experts", num_experts, "routed experts (0 = a dense SwiGLU MLP)", core::Bounds{0, 1 << 16});
    v("top_k", top_k, "experts per token", core::Bounds{1, 1 << 16});
    v("expert_hidden", expert_hidden, "SwiGLU hidden width of each expert (0 = the model's MLP width)",
      core::Bounds{0, 1 << 20});
    v("shared_expert_hidden", shared_expert_hidden, "hidden width of the shared expert (0 = none)",
      core::Bounds{0, 1 << 20});
    v("norm_topk_prob", norm_topk_prob, "renormalise the chosen experts' probabilities to sum 1");
    v("shared_expert_gate", shared_expert_gate, "scale the shared expert by sigmoid(shared_expert_gate x)");
  }
};

class SparseMoE : public Module {
 public:
  // default_hidden: the expert width when config.expert_hidden is 0. ValueError naming the
  // field for top_k > num_experts or num_experts 0.
  SparseMoE(int64_t dim, const MoeConfig& config, int64_t default_hidden, Generator& gen, double std = 0.02);
  Tensor forward(const Tensor& x) const;  // x [..., D] → [..., D]
  // Forward FLOPs per token: the router, k experts and the shared expert.
  double flops_per_token() const;

  Linear& gate;                          // router [E, D], no bias
  std::vector<SwiGLU*> experts;          // experts.<e>: gate_proj, up_proj [F, D], down_proj [D, F]
  SwiGLU* shared_expert = nullptr;       // with shared_expert_hidden
  Linear* shared_expert_gate = nullptr;  // [1, D], with shared_expert_gate

 private:
  int64_t dim_, top_k_, hidden_;
  bool norm_topk_prob_;
};

}  // namespace lnx::modules
