// Groups of samples (generate_groups, Session::repeat): prefilling each prompt once and
// repeating its state gives the same samples as prefilling every sample, for recurrent,
// hybrid (KV cache) and Mamba-2 models; the samples of a group differ from one another.
#include <gtest/gtest.h>

#include "generate/generate.h"
#include "generate/session.h"
#include "models/presets.h"
#include "numeric.h"

namespace lnx::generate {
namespace {

TEST(GenerateGroups, ForkedPromptStateEqualsPrefillingEverySample) {
  for (const std::string preset : {"hybrid-tiny", "mamba2-tiny", "gated_deltanet-tiny"}) {
    SCOPED_TRACE(preset);
    models::ModelConfig c = models::preset_config(preset);
    c.vocab_size = 50;
    models::LMModel m(c, 2);
    m.to(DType::f64);
    const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5, 6, 7}, {9, 8, 7}};
    SamplingOptions o;
    o.temperature = 1.0;
    o.max_new_tokens = 12;
    o.seed = 3;
    const auto forked = generate_groups(m, prompts, 4, o, true);
    const auto each = generate_groups(m, prompts, 4, o, false);
    ASSERT_EQ(forked.size(), 2u);
    EXPECT_EQ(forked, each);
    for (const auto& g : forked) {
      ASSERT_EQ(g.size(), 4u);
      for (const auto& s : g) EXPECT_EQ(s.size(), 12u);
      EXPECT_FALSE(g[0] == g[1] && g[1] == g[2] && g[2] == g[3]);  // independent draws
    }
    // A group of one is generate_batch.
    EXPECT_EQ(generate_groups(m, prompts, 1, o)[1][0], generate_batch(m, prompts, o)[1]);
  }
}

TEST(GenerateGroups, RepeatCopiesEverySequence) {
  models::LMModel m(models::preset_config("hybrid-tiny"), 1);
  Session s(m, 2);
  s.prefill_batch({{1, 2, 3}, {4, 5}});
  const Session r = s.repeat(3);
  ASSERT_EQ(r.num_sequences(), 6);
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(r.tokens(i), s.tokens(i / 3));
    EXPECT_TRUE(all_close(r.logits(i), s.logits(i / 3), 0, 0));
  }
  EXPECT_NE(error_of<ValueError>([&] { s.repeat(0); }).find("at least 1 copy"), std::string::npos);
  EXPECT_NE(error_of<ValueError>([&] { generate_groups(m, {{}}, 2, SamplingOptions{}); }).find("prompt 0 is empty"),
            std::string::npos);
}

}  // namespace
}  // namespace lnx::generate
