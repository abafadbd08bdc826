// Completion log-probabilities (train/policy.h): one packed chunk-mode call gives what each
// sequence alone gives, token by token, with padding masked, and gradients reach the model.
#include <gtest/gtest.h>

#include <cmath>

#include "models/presets.h"
#include "numeric.h"
#include "tensor/ops.h"
#include "train/policy.h"

namespace lnx::train {
namespace {

TEST(Policy, CompletionLogprobsEqualEachSequenceAlone) {
  for (const std::string preset : {"hybrid-tiny", "mamba2-tiny"}) {
    SCOPED_TRACE(preset);
    models::ModelConfig c = models::preset_config(preset);
    c.vocab_size = 30;
    models::LMModel m(c, 5);
    m.to(DType::f64);
    const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {4}, {5, 6}};
    const std::vector<std::vector<int32_t>> completions = {{7, 8}, {9, 10, 11, 12}, {}};
    const CompletionLogprobs r = completion_logprobs(m, prompts, completions);
    ASSERT_EQ(r.logp.shape(), (Shape{3, 4}));
    const std::vector<double> lp = r.logp.to_vector<double>(), mask = r.mask.to_vector<double>();
    for (size_t n = 0; n < 3; ++n) {
      std::vector<int64_t> seq(prompts[n].begin(), prompts[n].end());
      seq.insert(seq.end(), completions[n].begin(), completions[n].end());
      const Tensor logits = m.forward(from_vector(seq, {1, static_cast<int64_t>(seq.size())})).logits;
      const std::vector<double> ls = log_softmax(logits, -1).to_vector<double>();
      for (size_t j = 0; j < 4; ++j) {
        if (j >= completions[n].size()) {
          EXPECT_EQ(mask[n * 4 + j], 0.0);
          EXPECT_EQ(lp[n * 4 + j], 0.0);
          continue;
        }
        EXPECT_EQ(mask[n * 4 + j], 1.0);
        const size_t pos = prompts[n].size() + j - 1;
        EXPECT_NEAR(lp[n * 4 + j], ls[pos * 30 + static_cast<size_t>(completions[n][j])], 1e-10) << n << " " << j;
      }
    }
    sum(r.logp).backward();
    EXPECT_GT(max(abs(m.embeddings->weight.grad())).item(), 0.0);
  }
}

TEST(Policy, BadInputsAreErrors) {
  models::ModelConfig c = models::preset_config("gated_deltanet-tiny");
  c.vocab_size = 10;
  models::LMModel m(c);
  EXPECT_NE(error_of<ValueError>([&] { completion_logprobs(m, {{1}}, {}); }).find("1 prompts and 0 completions"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([&] { completion_logprobs(m, {{}}, {{1}}); }).find("prompt 0 is empty"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([&] { completion_logprobs(m, {{1}}, {{10}}); }).find("outside the vocabulary"),
            std::string::npos);
}

}  // namespace
}  // namespace lnx::train
