// The policy side of post-training: the log-probabilities a model gives the tokens of sampled
// completions, computed in one chunk-mode call over the packed (prompt + completion)
// sequences, differentiable in the model's parameters. Dimension letters: N completions, T the
// longest completion.
#pragma once

#include <cstdint>
#include <vector>

#include "models/lm_model.h"
#include "modules/linear.h"

namespace lnx::train {

struct CompletionLogprobs {
  Tensor logp;    // [N, T]: log π(c_t | prompt, c_<t), 0 past a completion's end
  Tensor mask;    // [N, T]: 1 at completion tokens
  Tensor values;  // [N, T]: value_head(hidden state) where it predicts c_t (a value head given), 0 past the end
};

// completions[i] continues prompts[i] (prompts non-empty; a completion may be empty).
// value_head: a Linear [D → 1] on the final hidden states (PPO's value on the shared trunk), the
// value V_t of the state before c_t sitting at the position whose logits give c_t.
// temperature: the log-probs of the distribution the completions were sampled from
// (softmax(logits / temperature)), as TRL computes them.
// ValueError for mismatched lists, empty prompts, ids outside the vocabulary, temperature <= 0.
CompletionLogprobs completion_logprobs(const models::LMModel& model, const std::vector<std::vector<int32_t>>& prompts,
                                       const std::vector<std::vector<int32_t>>& completions,
                                       const modules::Linear* value_head = nullptr, double temperature = 1.0);

}  // namespace lnx::train
