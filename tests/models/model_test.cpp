// Registry-driven tests of LMModel over every "-tiny" preset (one per mixer, and the hybrids):
// whole-sequence chunk forward = token-by-token recurrent decoding; padded batch with mask =
// unpadded sequences; split-and-resume; f32 against f64; save → load → identical logits.
#include <gtest/gtest.h>

#include <filesystem>

#include "models/checkpoint.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::models {
namespace {

std::vector<std::string> tiny_presets() {
  std::vector<std::string> names;
  for (const auto& p : presets())
    if (p.name.size() > 5 && p.name.compare(p.name.size() - 5, 5, "-tiny") == 0) names.push_back(p.name);
  return names;
}

class PresetModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<LMModel> make(DType dtype = DType::f64) {
    ModelConfig c = preset_config(GetParam());
    c.vocab_size = 37;
    for (auto& [name, layer] : c.layers) layer.options.set("chunk_size", 16);  // several chunks in a short test
    auto m = std::make_unique<LMModel>(c, 3);
    m->to(dtype);
    return m;
  }
  static Tensor ids(int64_t B, int64_t T, uint64_t seed = 5) {
    Generator gen(seed);
    return randint({B, T}, 0, 37, gen, DType::i64);
  }
};

TEST_P(PresetModelTest, ChunkForwardEqualsTokenByTokenDecoding) {
  auto m = make();
  const int64_t B = 2, T = 21;
  Tensor x = ids(B, T);
  ForwardOptions chunk;
  chunk.mode = core::Mode::chunk;
  ModelOutput whole = m->forward(x, nullptr, chunk);
  ASSERT_EQ(whole.logits.shape(), (Shape{B, T, 37}));
  ForwardOptions rec;
  rec.mode = core::Mode::recurrent;
  core::ModelState state;
  TensorList steps;
  for (int64_t t = 0; t < T; ++t) {
    ModelOutput o = m->forward(slice(x, 1, t, t + 1), &state, rec);
    steps.push_back(o.logits);
    state = std::move(o.state);
  }
  EXPECT_TRUE(all_close(concat(steps, 1), whole.logits, 1e-9));
  EXPECT_EQ(state.seen, (std::vector<int64_t>{T, T}));
}

TEST_P(PresetModelTest, Float32MatchesFloat64) {
  auto m64 = make(DType::f64), m32 = make(DType::f32);
  Tensor x = ids(2, 40);
  EXPECT_TRUE(all_close(m32->forward(x).logits, m64->forward(x).logits, 1e-5));
}

TEST_P(PresetModelTest, PaddedBatchWithMaskEqualsUnpadded) {
  auto m = make();
  const int64_t T = 19;
  Tensor x = ids(3, T);
  // Row 0 full, row 1 right-padded to 7 tokens, row 2 left-padded (tokens 4..18).
  std::vector<double> mask(3 * T, 0.0);
  for (int64_t t = 0; t < T; ++t) mask[t] = 1.0;
  for (int64_t t = 0; t < 7; ++t) mask[T + t] = 1.0;
  for (int64_t t = 4; t < T; ++t) mask[2 * T + t] = 1.0;
  ForwardOptions opt;
  opt.mask = from_vector(mask, {3, T});
  ModelOutput padded = m->forward(x, nullptr, opt);
  const int64_t starts[3] = {0, 0, 4}, ends[3] = {T, 7, T};
  for (int64_t b = 0; b < 3; ++b) {
    ModelOutput alone = m->forward(slice(slice(x, 0, b, b + 1), 1, starts[b], ends[b]));
    EXPECT_TRUE(all_close(slice(slice(padded.logits, 0, b, b + 1), 1, starts[b], ends[b]), alone.logits, 1e-10))
        << "row " << b;
  }
  EXPECT_EQ(padded.state.seen, (std::vector<int64_t>{T, 7, T - 4}));
  // The loss ignores padding: equal to the token-weighted mean over the rows alone.
  Tensor targets = ids(3, T, 8);
  const double masked = m->loss(x, targets, opt).item();
  double total = 0;
  int64_t count = 0;
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t n = ends[b] - starts[b];
    total += static_cast<double>(n) * m->loss(slice(slice(x, 0, b, b + 1), 1, starts[b], ends[b]),
                                              slice(slice(targets, 0, b, b + 1), 1, starts[b], ends[b]))
                                          .item();
    count += n;
  }
  EXPECT_NEAR(masked, total / static_cast<double>(count), 1e-10);
}

// Prompts of different lengths prefilled as one padded batch, then decoded together token by
// token: every row equals its prompt prefilled and decoded alone.
TEST_P(PresetModelTest, PaddedPrefillThenBatchedDecodingEqualsEachAlone) {
  auto m = make();
  const int64_t T = 17, steps = 5;
  const std::vector<int64_t> lengths = {17, 6, 11};
  Tensor prompts = ids(3, T, 6), next = ids(3, steps, 7);
  std::vector<double> mask(3 * T, 0.0);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t t = 0; t < lengths[b]; ++t) mask[b * T + t] = 1.0;
  ForwardOptions padded;
  padded.mask = from_vector(mask, {3, T});
  ModelOutput batch = m->forward(prompts, nullptr, padded);
  TensorList batch_steps;
  for (int64_t t = 0; t < steps; ++t) {
    batch = m->forward(slice(next, 1, t, t + 1), &batch.state);
    batch_steps.push_back(batch.logits);
  }
  for (int64_t b = 0; b < 3; ++b) {
    ModelOutput alone = m->forward(slice(slice(prompts, 0, b, b + 1), 1, 0, lengths[b]));
    for (int64_t t = 0; t < steps; ++t) {
      alone = m->forward(slice(slice(next, 0, b, b + 1), 1, t, t + 1), &alone.state);
      EXPECT_TRUE(all_close(slice(batch_steps[t], 0, b, b + 1), alone.logits, 1e-10)) << "row " << b << " step " << t;
    }
  }
  EXPECT_EQ(batch.state.seen, (std::vector<int64_t>{17 + steps, 6 + steps, 11 + steps}));
}

TEST_P(PresetModelTest, SplitAndResumeEqualsOneCall) {
  auto m = make();
  Tensor x = ids(2, 45);
  ModelOutput whole = m->forward(x);
  ModelOutput a = m->forward(slice(x, 1, 0, 18));
  ModelOutput b = m->forward(slice(x, 1, 18, 45), &a.state);
  EXPECT_TRUE(all_close(concat({a.logits, b.logits}, 1), whole.logits, 1e-10));
  // Packed: the two sequences continue by different amounts in one call.
  Tensor cont = concat({slice(slice(x, 0, 0, 1), 1, 18, 45), slice(slice(x, 0, 1, 2), 1, 18, 30)}, 1);  // [1, 39]
  ForwardOptions packed;
  packed.cu_seqlens = from_vector(std::vector<int64_t>{0, 27, 39}, {3});
  ModelOutput p = m->forward(cont, &a.state, packed);
  EXPECT_TRUE(all_close(slice(p.logits, 1, 0, 27), slice(slice(whole.logits, 0, 0, 1), 1, 18, 45), 1e-10));
  EXPECT_TRUE(all_close(slice(p.logits, 1, 27, 39), slice(slice(whole.logits, 0, 1, 2), 1, 18, 30), 1e-10));
  EXPECT_EQ(p.state.seen, (std::vector<int64_t>{45, 30}));
}

TEST_P(PresetModelTest, SaveLoadGivesIdenticalLogits) {
  auto m = make(DType::f32);
  const std::string dir = ::testing::TempDir() + "lnx_ckpt_" + GetParam();
  std::filesystem::remove_all(dir);
  save_model(*m, dir);
  save_model(*m, dir);  // replacing an existing checkpoint
  auto loaded = load_model(dir);
  Tensor x = ids(2, 33);
  EXPECT_EQ(max_abs_error(loaded->forward(x).logits, m->forward(x).logits), 0.0);
  EXPECT_EQ(loaded->num_parameters(), m->num_parameters());
  EXPECT_EQ(loaded->config().block_pattern, m->config().block_pattern);
  std::filesystem::remove_all(dir);
}

TEST_P(PresetModelTest, ReportsParametersAndFlops) {
  auto m = make(DType::f32);
  EXPECT_GT(m->num_parameters(), 0);
  const double f = m->flops_per_token(512);
  // At least 2 FLOPs per weight used in a matmul (the embedding is a lookup).
  EXPECT_GT(f, 2.0 * static_cast<double>(m->num_parameters() - m->embeddings->weight.numel()) * 0.9);
}

std::string preset_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(TinyPresets, PresetModelTest, ::testing::ValuesIn(tiny_presets()), preset_test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PresetModelTest);

TEST(Presets, EveryMixerHasTinyAndSmallAndAHybridMixesThree) {
  std::set<std::string> names;
  for (const auto& p : presets()) names.insert(p.name);
  for (const auto& m : modules::mixer_names()) {
    EXPECT_TRUE(names.count(m + "-tiny")) << m;
    EXPECT_TRUE(names.count(m + "-small")) << m;
  }
  const ModelConfig h = preset_config("hybrid3-tiny");
  EXPECT_EQ(std::set<std::string>(h.block_pattern.begin(), h.block_pattern.end()).size(), 3u);
}

TEST(Presets, SmallPresetsHaveTenToThirtyMillionParameters) {
  for (const auto& p : presets()) {
    if (p.name.find("-small") == std::string::npos) continue;
    LMModel m(p.config);
    const int64_t n = m.num_parameters();
    EXPECT_GE(n, 10'000'000) << p.name;
    EXPECT_LE(n, 30'000'000) << p.name;
  }
}

TEST(Presets, UnknownPresetNamesTheOthers) {
  try {
    preset_config("gdn-huge");
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("hybrid-tiny"), std::string::npos);
  }
}

}  // namespace
}  // namespace lnx::models

namespace lnx::models {
namespace {

TEST(LMModelRemat, SameLossAndGradientsAsWithoutRemat) {
  ModelConfig c = preset_config("hybrid3-tiny");
  c.vocab_size = 29;
  LMModel m(c, 4);
  Generator gen(2);
  Tensor x = randint({2, 33}, 0, 29, gen, DType::i64), y = randint({2, 33}, 0, 29, gen, DType::i64);
  m.loss(x, y).backward();
  std::vector<Tensor> plain;
  for (const auto& [name, p] : m.parameters()) {
    plain.push_back(clone(p.grad()));
    p.zero_grad();
  }
  ForwardOptions remat;
  remat.remat = true;
  Tensor loss = m.loss(x, y, remat);
  EXPECT_NEAR(loss.item(), m.loss(x, y).item(), 1e-6);
  loss.backward();
  size_t i = 0;
  for (const auto& [name, p] : m.parameters()) EXPECT_TRUE(all_close(p.grad(), plain[i++], 1e-6)) << name;
}

}  // namespace
}  // namespace lnx::models
