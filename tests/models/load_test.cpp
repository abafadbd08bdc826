// LMModel::for_loading, the loaders' construction without the random initialisation: for every
// "-tiny" preset, weights loaded into it (load_model of a checkpoint) give the model that
// loading them into a randomly initialised LMModel(config) gives, parameter for parameter and
// logit for logit in chunk and recurrent modes; it has the same parameters (names, shapes,
// dtypes) and leaves initialisation on afterwards. A Hugging Face fixture loaded by
// hf::load_model equals its weights copied into a randomly initialised model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/hf/hf.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::models {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> tiny_presets() {
  std::vector<std::string> names;
  for (const auto& p : presets())
    if (p.name.size() > 5 && p.name.compare(p.name.size() - 5, 5, "-tiny") == 0) names.push_back(p.name);
  return names;
}

ModelConfig tiny(const std::string& preset) {
  ModelConfig c = preset_config(preset);
  c.vocab_size = 37;
  for (auto& [name, layer] : c.layers) layer.options.set("chunk_size", 16);
  return c;
}

Tensor ids(int64_t B, int64_t T) {
  Generator gen(5);
  return randint({B, T}, 0, 37, gen, DType::i64);
}

// Same parameter names, shapes and dtypes; values bitwise equal when `values`.
void expect_same_parameters(const LMModel& a, const LMModel& b, bool values) {
  const TensorDict pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  auto ib = pb.begin();
  for (const auto& [name, t] : pa) {
    EXPECT_EQ(name, ib->first);
    EXPECT_EQ(t.shape(), ib->second.shape()) << name;
    EXPECT_EQ(t.dtype(), ib->second.dtype()) << name;
    if (values && t.shape() == ib->second.shape()) {
      EXPECT_EQ(max_abs_error(t, ib->second), 0.0) << name;
    }
    ++ib;
  }
}

void expect_same_logits(const LMModel& a, const LMModel& b) {
  const Tensor x = ids(2, 41);
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    ForwardOptions o;
    o.mode = mode;
    EXPECT_EQ(max_abs_error(a.forward(x, nullptr, o).logits, b.forward(x, nullptr, o).logits), 0.0)
        << core::mode_name(mode);
  }
}

class ForLoadingTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ForLoadingTest, HasTheParametersOfTheModelAndLeavesInitialisationOn) {
  const ModelConfig c = tiny(GetParam());
  LMModel before(c, 3);
  auto empty = LMModel::for_loading(c);
  EXPECT_FALSE(modules::SkipInit::active());
  expect_same_parameters(*empty, before, false);
  EXPECT_EQ(empty->num_parameters(), before.num_parameters());
  LMModel after(c, 3);  // drawn as before: the skip ended with for_loading
  expect_same_parameters(after, before, true);
}

TEST_P(ForLoadingTest, CheckpointLoadsAsIntoAnInitialisedModel) {
  const ModelConfig c = tiny(GetParam());
  const std::string dir = ::testing::TempDir() + "lnx_for_loading_" + GetParam();
  fs::remove_all(dir);
  LMModel source(c, 3);
  save_model(source, dir);
  auto loaded = load_model(dir);  // LMModel::for_loading + load_weights
  LMModel old_way(c, 11);         // a random initialisation, then the weights
  load_weights(old_way, dir + "/model.safetensors");
  expect_same_parameters(*loaded, old_way, true);
  expect_same_parameters(*loaded, source, true);
  expect_same_logits(*loaded, old_way);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(TinyPresets, ForLoadingTest, ::testing::ValuesIn(tiny_presets()), [](const auto& info) {
  std::string s = info.param;
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
});

TEST(ForLoading, HfFixturesLoadAsIntoAnInitialisedModel) {
  const std::string fixtures = LNX_SOURCE_DIR "/tests/fixtures/hf/";
  int checked = 0;
  for (const std::string& type : hf::model_types()) {
    const std::string dir = fixtures + type;
    if (!fs::exists(dir + "/config.json")) continue;
    SCOPED_TRACE(type);
    auto loaded = hf::load_model(dir);
    LMModel old_way(hf::load_config(dir), 7);
    const TensorDict weights = loaded->parameters();
    old_way.for_each_parameter([&](const std::string& name, Tensor& slot) {
      Tensor t = clone(weights.at(name).detach());
      t.set_requires_grad();
      slot = t;
    });
    expect_same_parameters(*loaded, old_way, true);
    expect_same_logits(*loaded, old_way);
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(Checkpoint, NonFiniteWeightsAreRefusedAtSaveAndLoad) {
  // Issue 14 D7/D9: a diverged model was saved and loaded, then generated garbage with rc 0.
  const std::string dir = ::testing::TempDir() + "lnx_nonfinite";
  fs::remove_all(dir);
  LMModel model(preset_config("attention-tiny"), 1);
  save_model(model, dir);
  TensorDict weights = model.parameters();
  Tensor w = clone(weights.at("norm.weight"));
  w.data<float>()[3] = NAN;
  const std::string good = dir + "/model.safetensors";
  model.for_each_parameter([&](const std::string& name, Tensor& p) {
    if (name == "norm.weight") p = w;
  });
  EXPECT_NE(error_of<ValueError>([&] {
              save_model(model, dir);
            }).find("refusing to save '" + dir + "': parameter 'norm.weight' [64] has 1 non-finite values"),
            std::string::npos);
  EXPECT_TRUE(load_model(dir));  // the good checkpoint is untouched
  TensorDict file = load_safetensors(good).tensors;
  file.set("norm.weight", w);
  save_safetensors(good, file);
  EXPECT_NE(error_of<ValueError>([&] { load_model(dir); }).find("parameter 'norm.weight'"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Checkpoint, AConfigTooLargeForItsWeightsIsRefusedBeforeAllocating) {
  // Issue 14 (fuzzing): a config.yaml or config.json edited to d_model 65536 next to a few KB
  // of weights allocated the whole model (gigabytes) before the shapes were compared.
  const std::string dir = ::testing::TempDir() + "lnx_config_too_large", hf_dir = dir + "_hf";
  for (const std::string& d : {dir, hf_dir}) fs::remove_all(d);
  LMModel model(preset_config("attention-tiny"), 1);
  save_model(model, dir);
  hf::save_model(model, hf_dir, "llama");
  auto edit = [](const std::string& path, const std::string& from, const std::string& to) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    std::ofstream(path) << text.replace(at, from.size(), to);
  };
  edit(dir + "/config.yaml", "d_model: 64", "d_model: 65536");
  edit(hf_dir + "/config.json", "\"hidden_size\": 64", "\"hidden_size\": 65536");
  for (const std::string& d : {dir, hf_dir}) {
    const std::string e = error_of<ValueError>([&] { load_model(d); });
    EXPECT_NE(e.find("its config describes a model of at least"), std::string::npos) << e;
    EXPECT_NE(e.find("but its .safetensors files hold"), std::string::npos) << e;
    fs::remove_all(d);
  }
}

}  // namespace
}  // namespace lnx::models
