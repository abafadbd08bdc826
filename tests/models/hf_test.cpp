// Hugging Face directories (models/hf): every architecture's fixture (tests/fixtures/hf/<type>,
// made by scripts/make_hf_fixtures.py with transformers' own classes) loads and gives
// transformers' float64 logits in chunk and recurrent modes, with padding and with packed
// sequences, and its greedy continuation; export → import gives the same model; sharded
// checkpoints load; malformed and unsupported directories give errors naming the problem.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "models/hf/hf.h"
#include "models/presets.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::models {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const std::string kFixtures = LNX_SOURCE_DIR "/tests/fixtures/hf/";

struct Reference {
  Tensor ids;     // [2, 13] i64
  Tensor logits;  // [2, 13, V] f64
  Tensor prompt;  // [1, 7]
  Tensor greedy;  // [1, 32]
};

Reference reference(const std::string& type) {
  SafetensorsFile f = load_safetensors(kFixtures + type + "/reference.safetensors");
  return {f.tensors.at("input_ids"), f.tensors.at("logits"), f.tensors.at("prompt"), f.tensors.at("greedy")};
}

Tensor logits_of(const LMModel& m, const Tensor& ids, core::Mode mode, const ForwardOptions& base = {}) {
  ForwardOptions o = base;
  o.mode = mode;
  return to_dtype(m.forward(ids, nullptr, o).logits, DType::f64);
}

// Greedy decoding through the model's state: prefill the prompt, then one token at a time.
std::vector<int64_t> greedy(const LMModel& m, const Tensor& prompt, int64_t steps) {
  ModelOutput out = m.forward(prompt);
  std::vector<int64_t> tokens;
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t T = out.logits.size(1);
    const Tensor last = to_dtype(slice(out.logits, 1, T - 1, T), DType::f64);
    const std::vector<double> row = last.to_vector<double>();
    const int64_t next = std::max_element(row.begin(), row.end()) - row.begin();
    tokens.push_back(next);
    out = m.forward(from_vector(std::vector<int64_t>{next}, {1, 1}), &out.state);
  }
  return tokens;
}

class HfFixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfFixtureTest, LogitsMatchTransformersInBothModes) {
  const Reference ref = reference(GetParam());
  auto model = hf::load_model(kFixtures + GetParam());
  std::ifstream config(kFixtures + GetParam() + "/config.json");
  EXPECT_EQ(model->config().name, Json::parse(config)["model_type"].get<std::string>());
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent})
    EXPECT_TRUE(all_close(logits_of(*model, ref.ids, mode), ref.logits, 1e-4)) << core::mode_name(mode);
  // In float64 the same weights give transformers' logits to the precision of its float64 run:
  // parts of it stay float32 in any dtype (RMSNorms and RoPE frequencies, ~1e-7; Qwen3-Next's
  // delta-rule kernels, ~2e-6).
  model->to(DType::f64);
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent})
    EXPECT_TRUE(all_close(logits_of(*model, ref.ids, mode), ref.logits, 1e-5)) << core::mode_name(mode);
}

TEST_P(HfFixtureTest, PaddedAndPackedBatchesMatch) {
  const Reference ref = reference(GetParam());
  auto model = hf::load_model(kFixtures + GetParam());
  const int64_t T = ref.ids.size(1), short_len = 9;
  // Row 1 keeps its first 9 tokens (causal: its logits there are the reference's).
  Tensor mask = ones({2, T}, DType::i64);
  std::vector<int64_t> m = mask.to_vector<int64_t>();
  for (int64_t t = short_len; t < T; ++t) m[T + t] = 0;
  mask = from_vector(m, {2, T});
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    ForwardOptions o;
    o.mask = mask;
    const Tensor padded = logits_of(*model, ref.ids, mode, o);
    EXPECT_TRUE(all_close(slice(padded, 0, 0, 1), slice(ref.logits, 0, 0, 1), 1e-4)) << core::mode_name(mode);
    EXPECT_TRUE(all_close(slice(slice(padded, 0, 1, 2), 1, 0, short_len),
                          slice(slice(ref.logits, 0, 1, 2), 1, 0, short_len), 1e-4))
        << core::mode_name(mode);
    // Packed: [row 0 | row 1's first 9 tokens] in one row with cu_seqlens.
    ForwardOptions p;
    p.cu_seqlens = from_vector(std::vector<int64_t>{0, T, T + short_len}, {3});
    const Tensor packed_ids = concat({slice(ref.ids, 0, 0, 1), slice(slice(ref.ids, 0, 1, 2), 1, 0, short_len)}, 1);
    const Tensor packed = logits_of(*model, packed_ids, mode, p);
    const Tensor expected = concat({slice(ref.logits, 0, 0, 1), slice(slice(ref.logits, 0, 1, 2), 1, 0, short_len)}, 1);
    EXPECT_TRUE(all_close(packed, expected, 1e-4)) << core::mode_name(mode);
  }
}

TEST_P(HfFixtureTest, GreedyContinuationMatchesTransformers) {
  const Reference ref = reference(GetParam());
  auto model = hf::load_model(kFixtures + GetParam());
  EXPECT_EQ(greedy(*model, ref.prompt, ref.greedy.size(1)), ref.greedy.to_vector<int64_t>());
}

TEST_P(HfFixtureTest, ExportThenImportGivesTheSameModel) {
  auto model = hf::load_model(kFixtures + GetParam());
  const std::string dir = ::testing::TempDir() + "lnx_hf_export_" + GetParam();
  std::ifstream config(kFixtures + GetParam() + "/config.json");
  EXPECT_EQ(hf::export_type(model->config()), Json::parse(config)["model_type"].get<std::string>());
  hf::save_model(*model, dir);
  auto again = hf::load_model(dir);
  const TensorDict a = model->parameters(), b = again->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(all_close(b.at(name), t, 0.0, 0.0)) << name;
  // The written config.json carries the fixture's model-defining keys with the same values.
  std::ifstream fin(kFixtures + GetParam() + "/config.json"), ein(dir + "/config.json");
  const Json fixture = Json::parse(fin), exported = Json::parse(ein);
  for (const auto& [key, value] : exported.items()) {
    if (!fixture.contains(key) || key == "max_position_embeddings" || key == "dtype" || key == "chunk_size" ||
        key == "mamba_chunk_size")
      continue;
    EXPECT_EQ(value, fixture[key]) << key;
  }
  fs::remove_all(dir);
}

TEST_P(HfFixtureTest, ShardedCheckpointLoads) {
  const std::string src = kFixtures + GetParam(), dir = ::testing::TempDir() + "lnx_hf_sharded_" + GetParam();
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(src + "/config.json", dir + "/config.json");
  SafetensorsFile all = load_safetensors(src + "/model.safetensors");
  TensorDict shard[2];
  Json index;
  int i = 0;
  for (const auto& [name, t] : all.tensors) {
    const int s = i++ % 2;
    shard[s].insert(name, t);
    index["weight_map"][name] = fmt::format("model-0000{}-of-00002.safetensors", s + 1);
  }
  for (int s = 0; s < 2; ++s)
    save_safetensors(dir + fmt::format("/model-0000{}-of-00002.safetensors", s + 1), shard[s]);
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  auto a = hf::load_model(src), b = hf::load_model(dir);
  const Reference ref = reference(GetParam());
  EXPECT_TRUE(all_close(logits_of(*b, ref.ids, core::Mode::chunk), logits_of(*a, ref.ids, core::Mode::chunk), 0.0));
  fs::remove_all(dir);
}

// Every fixture directory: one per model_type, plus variants (llama3_rope: Llama 3.1's RoPE
// frequency scaling).
std::vector<std::string> fixture_names() {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(kFixtures))
    if (fs::exists(entry.path() / "config.json")) out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(HfFixtures, EveryModelTypeHasOne) {
  for (const auto& type : hf::model_types()) EXPECT_TRUE(fs::exists(kFixtures + type + "/config.json")) << type;
}

INSTANTIATE_TEST_SUITE_P(Architectures, HfFixtureTest, ::testing::ValuesIn(fixture_names()));

// ---- malformed and unsupported directories ----

class HfErrorTest : public ::testing::Test {
 protected:
  // A copy of a fixture whose config.json edit() may change.
  std::string copy(const std::string& type, const std::function<void(Json&)>& edit = {}) {
    // One directory per test: ctest runs this suite's tests as parallel processes.
    const std::string dir = ::testing::TempDir() + "lnx_hf_bad_" + type + "_" +
                            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy_file(kFixtures + type + "/model.safetensors", dir + "/model.safetensors");
    std::ifstream in(kFixtures + type + "/config.json");
    Json j = Json::parse(in);
    if (edit) edit(j);
    std::ofstream(dir + "/config.json") << j.dump(2);
    return dir;
  }
  static std::string load_error(const std::string& dir) {
    return error_of<Error>([&] { hf::load_model(dir); });
  }
};

TEST_F(HfErrorTest, ConfigProblemsNameTheKey) {
  auto expect = [&](const std::string& type, const std::function<void(Json&)>& edit, const std::string& text) {
    const std::string e = load_error(copy(type, edit));
    EXPECT_NE(e.find(text), std::string::npos) << e;
  };
  expect(
      "llama", [](Json& j) { j["model_type"] = "gpt9"; }, "model_type 'gpt9' is not supported");
  expect(
      "llama", [](Json& j) { j["fancy_new_option"] = 3; }, "unknown key fancy_new_option");
  expect(
      "llama", [](Json& j) { j["rope_parameters"]["rope_type"] = "yarn"; }, "rope_type");
  expect(
      "llama", [](Json& j) { j["hidden_act"] = "gelu"; }, "hidden_act");
  expect(
      "llama", [](Json& j) { j["num_attention_heads"] = "six"; }, "num_attention_heads must be an integer");
  expect(
      "llama", [](Json& j) { j.erase("hidden_size"); }, "hidden_size is missing");
  expect(
      "llama", [](Json& j) { j["attention_dropout"] = 0.1; }, "attention_dropout");
  expect(
      "qwen2", [](Json& j) { j["use_sliding_window"] = true; }, "use_sliding_window");
  expect(
      "mamba", [](Json& j) { j["use_bias"] = true; }, "use_bias");
  expect(
      "mamba2", [](Json& j) { j["num_heads"] = 7; }, "num_heads");
  expect(
      "mamba2",
      [](Json& j) {
        j["time_step_limit"] = Json::array({0.0, 0.1});
      },
      "time_step_limit");
}

TEST_F(HfErrorTest, WeightProblemsAreListedTogether) {
  // Hidden size grown: every tensor's shape is wrong, and the error lists them.
  std::string e = load_error(copy("llama", [](Json& j) { j["intermediate_size"] = 96; }));
  EXPECT_NE(e.find("mlp.gate_proj.weight' is [80,48] in the checkpoint, expected [96,48]"), std::string::npos) << e;
  EXPECT_NE(e.find("mlp.down_proj.weight"), std::string::npos) << e;
  // Untying the head: the checkpoint misses lm_head.weight.
  e = load_error(copy("mamba", [](Json& j) { j["tie_word_embeddings"] = false; }));
  EXPECT_NE(e.find("missing 'lm_head.weight'"), std::string::npos) << e;
  // One layer fewer: the last layer's tensors are unexpected.
  e = load_error(copy("mamba2", [](Json& j) { j["num_hidden_layers"] = 2; }));
  EXPECT_NE(e.find("unexpected tensor 'backbone.layers.2.mixer.A_log'"), std::string::npos) << e;
}

TEST_F(HfErrorTest, MissingAndMalformedFiles) {
  std::string dir = copy("llama");
  fs::remove(dir + "/model.safetensors");
  EXPECT_NE(load_error(dir).find("neither model.safetensors nor model.safetensors.index.json"), std::string::npos);
  std::ofstream(dir + "/model.safetensors.index.json") << R"({"weight_map": {"lm_head.weight": "../x.safetensors"}})";
  EXPECT_NE(load_error(dir).find("is not a file name in the directory"), std::string::npos) << load_error(dir);
  std::ofstream(dir + "/model.safetensors.index.json") << R"({"weight_map": {"lm_head.weight": "shard.safetensors"}})";
  EXPECT_NE(load_error(dir).find("lists shard 'shard.safetensors', which is missing"), std::string::npos);
  std::ofstream(dir + "/config.json") << "{ not json";
  EXPECT_NE(load_error(dir).find("is not valid JSON"), std::string::npos) << load_error(dir);
  fs::remove(dir + "/config.json");
  EXPECT_NE(load_error(dir).find("has no config.json"), std::string::npos) << load_error(dir);
  EXPECT_FALSE(hf::is_hf_directory(dir));
  EXPECT_TRUE(hf::is_hf_directory(kFixtures + "llama"));
}

TEST(HfExport, PresetsGoToTheArchitectureThatExpressesThem) {
  // gated_deltanet presets have plain RMSNorms (w); qwen3_next's are zero-centered (1 + w): the
  // export shifts the weights, and the model read back computes the same logits.
  for (const auto& [preset, type] : std::vector<std::pair<std::string, std::string>>{
           {"gated_deltanet-tiny", "qwen3_next"}, {"attention-tiny", "llama"}, {"mamba2-tiny", "mamba2"}}) {
    SCOPED_TRACE(preset);
    LMModel m(preset_config(preset), 4);
    EXPECT_EQ(hf::export_type(m.config()), type);
    const std::string dir = ::testing::TempDir() + "lnx_hf_preset_" + preset;
    hf::save_model(m, dir);
    auto back = hf::load_model(dir);
    Generator gen(2);
    const Tensor ids = randint({2, 19}, 0, m.config().vocab_size, gen, DType::i64);
    EXPECT_TRUE(all_close(logits_of(*back, ids, core::Mode::chunk), logits_of(m, ids, core::Mode::chunk), 1e-6));
    fs::remove_all(dir);
  }
}

TEST(HfExport, ModelsNoArchitectureExpressesAreRefusedWithReasons) {
  ModelConfig c;
  c.block_pattern = {"gated_deltanet", "attention"};
  c.n_layer = 2;
  std::string why;
  EXPECT_EQ(hf::export_type(c, &why), "");
  EXPECT_NE(why.find("llama"), std::string::npos) << why;
  LMModel m(c);
  const std::string e = error_of<ValueError>([&] { hf::save_model(m, ::testing::TempDir() + "lnx_hf_none"); });
  EXPECT_NE(e.find("no Hugging Face architecture expresses"), std::string::npos) << e;
}

}  // namespace
}  // namespace lnx::models
