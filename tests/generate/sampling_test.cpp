// Sampling extensions: the repetition penalty (hand-made logits, and greedy generation against
// a reference loop over the full forward), stop strings with a char tokenizer, TokenStream.
#include <gtest/gtest.h>

#include <cmath>

#include "data/tokenizer.h"
#include "generate/generate.h"
#include "generate/token_stream.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace lnx::generate {
namespace {

TEST(RepetitionPenalty, DividesPositiveAndMultipliesNegativeLogitsOfSeenTokens) {
  std::vector<double> z = {2.0, -1.0, 0.5, 3.0, 0.0};
  apply_repetition_penalty(z, {0, 1, 1, 4, 0}, 2.0);  // repeats count once
  EXPECT_EQ(z, (std::vector<double>{1.0, -2.0, 0.5, 3.0, 0.0}));
  std::vector<double> same = {2.0, -1.0};
  apply_repetition_penalty(same, {0, 1}, 1.0);
  EXPECT_EQ(same, (std::vector<double>{2.0, -1.0}));

  Generator g(3);
  SamplingOptions o;
  o.temperature = 0;
  o.repetition_penalty = 1.5;
  const Tensor pos = from_vector(std::vector<double>{3.0, 2.9, 1.0}, {3});
  EXPECT_EQ(sample_token(pos, o, g), 0);       // no history: no penalty
  EXPECT_EQ(sample_token(pos, o, g, {0}), 1);  // 3 / 1.5 = 2 < 2.9
  const Tensor neg = from_vector(std::vector<double>{-1.0, -1.4, -9.0}, {3});
  EXPECT_EQ(sample_token(neg, o, g, {0}), 1);  // −1 · 1.5 = −1.5 < −1.4
  o.repetition_penalty = 0;
  EXPECT_THROW(sample_token(pos, o, g, {0}), ValueError);
}

TEST(RepetitionPenalty, GreedyGenerationMatchesAReferenceLoop) {
  models::ModelConfig c = models::preset_config("hybrid-tiny");
  c.vocab_size = 19;
  models::LMModel m(c, 4);
  m.to(DType::f64);
  const std::vector<int32_t> prompt = {3, 3, 7, 1, 12};
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 10;
  o.repetition_penalty = 50;  // untrained logits are tiny: a strong penalty to matter
  const std::vector<int32_t> got = generate(m, prompt, o);
  NoGradGuard no_grad;
  std::vector<int32_t> seq = prompt;
  for (size_t i = 0; i < got.size(); ++i) {
    std::vector<int64_t> ids(seq.begin(), seq.end());
    const Tensor logits = m.forward(from_vector(ids, {1, static_cast<int64_t>(ids.size())})).logits;
    std::vector<double> z = select(select(logits, 0, 0), 0, static_cast<int64_t>(seq.size()) - 1).to_vector<double>();
    apply_repetition_penalty(z, seq, 50);
    const int32_t want = static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin());
    ASSERT_EQ(got[i], want) << "token " << i;
    seq.push_back(want);
  }
  // The penalty changes what a plain greedy run would say (else this test proves little).
  o.repetition_penalty = 1.0;
  EXPECT_NE(generate(m, prompt, o), got);
}

TEST(Sampling, NonFiniteLogitsAreAnError) {
  // Issue 14 D9: NaN logits printed garbage. −inf is a masked token and stays allowed.
  Generator gen(0);
  SamplingOptions o;
  EXPECT_EQ(sample_token(from_list({0.0, -INFINITY, 1.0}, {3}), o, gen, {}), 2);
  for (double bad : {static_cast<double>(NAN), static_cast<double>(INFINITY)}) {
    for (double temperature : {0.0, 1.0}) {
      o.temperature = temperature;
      EXPECT_NE(error_of<ValueError>([&] {
                  sample_token(from_list({0.0, bad, 1.0}, {3}), o, gen, {});
                }).find("logits are not finite"),
                std::string::npos);
    }
  }
}

TEST(StopStrings, EndAtTheTokenCompletingTheStopString) {
  const auto tok = data::train_char_tokenizer("the quick brown fox jumps over a lazy dog.");
  models::ModelConfig c = models::preset_config("gated_deltanet-tiny");
  c.vocab_size = tok->vocab_size();
  models::LMModel m(c, 2);
  m.to(DType::f64);
  const std::vector<int32_t> prompt = tok->encode("the ");
  SamplingOptions o;
  o.temperature = 0.9;
  o.seed = 5;
  o.max_new_tokens = 40;
  const std::vector<int32_t> all = generate(m, prompt, o);
  ASSERT_EQ(all.size(), 40u);
  const std::string text = tok->decode(all);
  const std::string stop = text.substr(12, 2);  // a string that does occur
  // Expected: the shortest prefix of the tokens whose text contains the stop string.
  size_t k = 1;
  while (tok->decode(std::vector<int32_t>(all.begin(), all.begin() + k)).find(stop) == std::string::npos) ++k;
  o.stop_strings = {"never-there", stop};
  o.tokenizer = tok.get();
  const std::vector<int32_t> stopped = generate(m, prompt, o);
  EXPECT_EQ(stopped, std::vector<int32_t>(all.begin(), all.begin() + k));
  const std::string out = tok->decode(stopped);
  EXPECT_EQ(trim_at_stop_string(out, o.stop_strings), out.substr(0, out.find(stop)));
  EXPECT_EQ(trim_at_stop_string("abc", {"x"}), "abc");
  EXPECT_EQ(trim_at_stop_string("a.b;c", {";", "."}), "a");  // the earliest occurrence
  // The stream stops at the same token.
  TokenStream stream(m, prompt, o);
  std::vector<int32_t> pulled;
  while (auto t = stream.next()) pulled.push_back(*t);
  EXPECT_EQ(pulled, stopped);
  EXPECT_TRUE(stream.done());
  EXPECT_FALSE(stream.next().has_value());
  // Stop strings need a tokenizer; empty stop strings are refused.
  o.tokenizer = nullptr;
  EXPECT_THROW(generate(m, prompt, o), ValueError);
  o.tokenizer = tok.get();
  o.stop_strings = {""};
  EXPECT_THROW(generate(m, prompt, o), ValueError);
}

TEST(TokenStream, YieldsTheTokensOfGenerate) {
  models::LMModel m(models::preset_config("hybrid3-tiny"), 6);
  for (double temperature : {0.0, 0.8}) {
    SamplingOptions o;
    o.temperature = temperature;
    o.top_k = 5;
    o.seed = 11;
    o.max_new_tokens = 9;
    const std::vector<int32_t> want = generate(m, {4, 8, 15, 16, 23}, o);
    TokenStream stream(m, {4, 8, 15, 16, 23}, o);
    std::vector<int32_t> got;
    while (auto t = stream.next()) got.push_back(*t);
    EXPECT_EQ(got, want) << "temperature " << temperature;
    // The session lags by the last token, which was never fed.
    EXPECT_EQ(stream.session().tokens().size(), 5u + want.size() - 1);
  }
}

}  // namespace
}  // namespace lnx::generate
