// Generation: greedy decoding through the recurrent path equals re-running the full forward on
// the growing sequence (every tiny preset); sampling options do what they say; seeds repeat.
#include <gtest/gtest.h>

#include <cmath>

#include "generate/generate.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::generate {
namespace {

std::vector<std::string> tiny_presets() {
  std::vector<std::string> names;
  for (const auto& p : models::presets())
    if (p.name.find("-tiny") != std::string::npos) names.push_back(p.name);
  return names;
}

class GreedyDecoding : public ::testing::TestWithParam<std::string> {};

TEST_P(GreedyDecoding, EqualsArgmaxOfTheFullForwardOnTheGrowingSequence) {
  models::ModelConfig c = models::preset_config(GetParam());
  c.vocab_size = 23;
  models::LMModel m(c, 9);
  m.to(DType::f64);  // ties between logits are then vanishingly unlikely
  const std::vector<int32_t> prompt = {3, 17, 5, 5, 9, 0, 22};
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 12;
  const std::vector<int32_t> fast = generate(m, prompt, o);
  ASSERT_EQ(fast.size(), 12u);
  std::vector<int64_t> seq(prompt.begin(), prompt.end());
  NoGradGuard no_grad;
  for (size_t i = 0; i < fast.size(); ++i) {
    models::ForwardOptions chunk;
    chunk.mode = core::Mode::chunk;
    const Tensor logits = m.forward(from_vector(seq, {1, static_cast<int64_t>(seq.size())}), nullptr, chunk).logits;
    const Tensor last = select(select(logits, 0, 0), 0, static_cast<int64_t>(seq.size()) - 1);
    const int64_t want = argmax(last, 0).to_vector<int64_t>()[0];
    ASSERT_EQ(fast[i], want) << "token " << i;
    seq.push_back(want);
  }
}

std::string name_of(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
}
INSTANTIATE_TEST_SUITE_P(TinyPresets, GreedyDecoding, ::testing::ValuesIn(tiny_presets()), name_of);

TEST(Sampling, OptionsAndSeeds) {
  const Tensor logits = from_vector(std::vector<double>{1.0, 3.0, 2.0, -1.0, 2.9}, {5});
  Generator g(1);
  SamplingOptions greedy;
  greedy.temperature = 0;
  EXPECT_EQ(sample_token(logits, greedy, g), 1);
  SamplingOptions top1;
  top1.top_k = 1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, top1, g), 1);
  SamplingOptions top2;
  top2.top_k = 2;
  for (int i = 0; i < 50; ++i) {
    const int32_t t = sample_token(logits, top2, g);
    EXPECT_TRUE(t == 1 || t == 4) << t;
  }
  SamplingOptions nucleus;
  nucleus.top_p = 0.01;  // only the most likely token
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, nucleus, g), 1);
  // Frequencies follow softmax(logits / T).
  SamplingOptions warm;
  warm.temperature = 2.0;
  std::vector<int> count(5, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++count[sample_token(logits, warm, g)];
  const std::vector<double> p = softmax(div(logits, 2.0), 0).to_vector<double>();
  for (int k = 0; k < 5; ++k) EXPECT_NEAR(count[k] / double(n), p[k], 0.015) << k;
  // Same seed, same tokens; bad options are errors.
  models::LMModel m(models::preset_config("hybrid-tiny"), 1);
  SamplingOptions o;
  o.max_new_tokens = 10;
  o.seed = 42;
  EXPECT_EQ(generate(m, {1, 2, 3}, o), generate(m, {1, 2, 3}, o));
  o.seed = 43;
  SamplingOptions bad;
  bad.top_p = 0;
  EXPECT_THROW(sample_token(logits, bad, g), ValueError);
  EXPECT_THROW(generate(m, {}, o), ValueError);
  EXPECT_THROW(generate(m, {300}, o), ValueError);
}

TEST(Sampling, StopTokensAndCallbackEndGeneration) {
  models::LMModel m(models::preset_config("hybrid-tiny"), 1);
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 30;
  const std::vector<int32_t> all = generate(m, {7, 8}, o);
  ASSERT_EQ(all.size(), 30u);
  o.stop_tokens = {all[4]};
  const std::vector<int32_t> stopped = generate(m, {7, 8}, o);
  size_t first = 0;
  while (all[first] != all[4]) ++first;
  EXPECT_EQ(stopped.size(), first + 1);  // the stop token is emitted, then generation ends
  int calls = 0;
  o.stop_tokens.clear();
  const std::vector<int32_t> three = generate(m, {7, 8}, o, [&](int32_t) { return ++calls < 3; });
  EXPECT_EQ(three.size(), 3u);
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace lnx::generate
