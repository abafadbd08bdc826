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

TEST(Policy, ValuesComeFromTheHiddenStateThatPredictsEachToken) {
  models::ModelConfig c = models::preset_config("hybrid-tiny");
  c.vocab_size = 30;
  models::LMModel m(c, 2);
  m.to(DType::f64);
  Generator gen(3);
  modules::Linear head(c.d_model, 1, true, gen, 0.5);
  head.to(DType::f64);
  *head.bias = full({1}, 0.25, DType::f64);
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {4}};
  const std::vector<std::vector<int32_t>> completions = {{7, 8, 9}, {5}};
  const CompletionLogprobs r = completion_logprobs(m, prompts, completions, &head);
  ASSERT_EQ(r.values.shape(), (Shape{2, 3}));
  const std::vector<double> v = r.values.to_vector<double>();
  const std::vector<double> w = head.weight.to_vector<double>();
  const auto D = static_cast<size_t>(c.d_model);
  for (size_t n = 0; n < 2; ++n) {
    std::vector<int64_t> seq(prompts[n].begin(), prompts[n].end());
    seq.insert(seq.end(), completions[n].begin(), completions[n].end());
    models::ForwardOptions o;
    o.return_hidden = true;
    const std::vector<double> h =
        m.forward(from_vector(seq, {1, static_cast<int64_t>(seq.size())}), nullptr, o).hidden.to_vector<double>();
    for (size_t j = 0; j < 3; ++j) {
      if (j >= completions[n].size()) {
        EXPECT_EQ(v[n * 3 + j], 0.0);
        continue;
      }
      const size_t pos = prompts[n].size() + j - 1;
      double expected = 0.25;
      for (size_t d = 0; d < D; ++d) expected += h[pos * D + d] * w[d];
      EXPECT_NEAR(v[n * 3 + j], expected, 1e-10) << n << " " << j;
    }
  }
  sum(r.values).backward();
  EXPECT_GT(max(abs(head.weight.grad())).item(), 0.0);
  EXPECT_GT(max(abs(m.embeddings->weight.grad())).item(), 0.0);  // the shared trunk learns from the value loss
  modules::Linear wrong(c.d_model + 1, 1, true, gen);
  EXPECT_NE(error_of<ShapeError>([&] { completion_logprobs(m, prompts, completions, &wrong); }).find("value head"),
            std::string::npos);
}

TEST(Policy, LogprobsAtTheSamplingTemperature) {
  models::ModelConfig c = models::preset_config("gated_deltanet-tiny");
  c.vocab_size = 20;
  models::LMModel m(c, 4);
  m.to(DType::f64);
  const std::vector<std::vector<int32_t>> prompts = {{1, 2}}, completions = {{3, 4, 5}};
  const Tensor lp = completion_logprobs(m, prompts, completions, nullptr, 0.7).logp;
  const Tensor logits = m.forward(from_list({1.0, 2.0, 3.0, 4.0, 5.0}, {1, 5}, DType::i64)).logits;  // [1, 5, 20]
  const std::vector<double> ls = log_softmax(div(logits, 0.7), -1).to_vector<double>();
  const std::vector<double> got = lp.to_vector<double>();
  for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(got[j], ls[(1 + j) * 20 + static_cast<size_t>(completions[0][j])], 1e-10);
  EXPECT_GT(std::abs(got[0] - completion_logprobs(m, prompts, completions).logp.to_vector<double>()[0]), 1e-6);
  EXPECT_NE(error_of<ValueError>([&] {
              completion_logprobs(m, prompts, completions, nullptr, 0.0);
            }).find("temperature must be > 0"),
            std::string::npos);
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
