// generate_batch: prompts of different lengths prefilled together and decoded together equal
// generating each alone with seed + i (every tiny preset, greedy and sampled); finished
// sequences are no longer reported.
#include <gtest/gtest.h>

#include "generate/generate.h"
#include "models/presets.h"

namespace lnx::generate {
namespace {

std::vector<std::string> tiny_presets() {
  std::vector<std::string> names;
  for (const auto& p : models::presets())
    if (p.name.find("-tiny") != std::string::npos) names.push_back(p.name);
  return names;
}

std::vector<std::vector<int32_t>> prompts_of(const std::vector<int64_t>& lengths, int32_t V, uint64_t seed) {
  Generator g(seed);
  std::vector<std::vector<int32_t>> out;
  for (int64_t len : lengths) {
    std::vector<int32_t> p;
    for (int64_t t = 0; t < len; ++t) p.push_back(static_cast<int32_t>(g.next_u64() % static_cast<uint64_t>(V)));
    out.push_back(p);
  }
  return out;
}

class BatchedGeneration : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchedGeneration, EqualsEachPromptAloneWithItsSeed) {
  models::ModelConfig c = models::preset_config(GetParam());
  c.vocab_size = 23;
  models::LMModel m(c, 9);
  m.to(DType::f64);  // ties between logits are then vanishingly unlikely
  const auto prompts = prompts_of({1, 7, 19}, 23, 1);
  for (double temperature : {0.0, 0.8}) {
    SamplingOptions o;
    o.temperature = temperature;
    o.top_k = temperature > 0 ? 5 : 0;
    o.seed = 100;
    o.max_new_tokens = 6;
    o.stop_tokens = {21};  // may end some sequences early, which the batch must handle
    std::vector<std::vector<int32_t>> reported(prompts.size());
    const auto batch = generate_batch(m, prompts, o, [&](int64_t seq, int32_t t) {
      reported[static_cast<size_t>(seq)].push_back(t);
      return true;
    });
    ASSERT_EQ(batch.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      SamplingOptions alone = o;
      alone.seed = o.seed + i;
      EXPECT_EQ(batch[i], generate(m, prompts[i], alone)) << "temperature " << temperature << ", prompt " << i;
      EXPECT_EQ(reported[i], batch[i]);
    }
  }
}

std::string name_of(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
}
INSTANTIATE_TEST_SUITE_P(TinyPresets, BatchedGeneration, ::testing::ValuesIn(tiny_presets()), name_of);

TEST(BatchedGeneration, FinishedSequencesAreNoLongerReported) {
  models::LMModel m(models::preset_config("hybrid-tiny"), 3);
  m.to(DType::f64);
  const auto prompts = prompts_of({4, 9, 2}, 50, 2);
  SamplingOptions o;
  o.temperature = 0.7;
  o.seed = 8;
  o.max_new_tokens = 7;
  std::vector<int> calls(3, 0);
  const auto batch = generate_batch(m, prompts, o, [&](int64_t seq, int32_t) {
    ++calls[static_cast<size_t>(seq)];
    return !(seq == 1 && calls[1] == 2);  // sequence 1 stops after its second token
  });
  EXPECT_EQ(calls, (std::vector<int>{7, 2, 7}));
  EXPECT_EQ(batch[1].size(), 2u);
  // The others are unaffected by sequence 1 leaving the batch.
  for (size_t i : {size_t{0}, size_t{2}}) {
    SamplingOptions alone = o;
    alone.seed = o.seed + i;
    EXPECT_EQ(batch[i], generate(m, prompts[i], alone)) << i;
  }
  EXPECT_THROW(generate_batch(m, {{1, 2}, {}}, o), ValueError);
  EXPECT_THROW(generate_batch(m, {}, o), ValueError);
}

}  // namespace
}  // namespace lnx::generate
