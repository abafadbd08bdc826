// Session: fork independence, and save → load → continue equals never having stopped (greedy
// and sampled; a hybrid preset with ragged KV caches, a mamba2 preset with conv caches);
// state files from another model are ValueErrors, truncated or corrupted ones IOErrors.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "generate/generate.h"
#include "generate/session.h"
#include "io/safetensors.h"
#include "models/presets.h"
#include "numeric.h"

namespace lnx::generate {
namespace {

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "lnx_gen_" + name + ".safetensors"; }

models::ModelConfig config(const std::string& preset) {
  models::ModelConfig c = models::preset_config(preset);
  c.vocab_size = 31;
  return c;
}

const std::vector<std::vector<int32_t>> kPrompts = {{5, 1, 30, 2, 2}, {7, 7, 3, 9, 12, 0, 4, 28, 19}};

TEST(Session, ForkIsAnIndependentDeepCopy) {
  models::LMModel m(config("hybrid-tiny"), 1);
  Session s(m);
  s.prefill({3, 1, 4, 1, 5, 9, 2, 6});
  Session f = s.fork();
  for (size_t i = 0; i < s.state().layers.size(); ++i)
    for (const auto& [name, t] : s.state().layers[i].tensors)
      EXPECT_FALSE(t.shares_storage(f.state().layers[i].tensors.at(name))) << i << " " << name;
  EXPECT_FALSE(s.logits().shares_storage(f.logits()));
  const core::ModelState before = f.state();
  SamplingOptions o;
  o.temperature = 0.9;
  o.seed = 3;
  o.max_new_tokens = 10;
  const std::vector<int32_t> a = s.generate(o);
  // The fork still holds the state at the fork point, and continues exactly like s did.
  EXPECT_EQ(f.tokens().size(), 8u);
  for (size_t i = 0; i < before.layers.size(); ++i)
    for (const auto& [name, t] : before.layers[i].tensors)
      EXPECT_EQ(max_abs_error(to_dtype(f.state().layers[i].tensors.at(name), DType::f64), to_dtype(t, DType::f64)),
                0.0);
  EXPECT_EQ(f.generate(o), a);
  EXPECT_EQ(s.tokens().size(), 18u);
  // And the free function says the same.
  EXPECT_EQ(generate(m, {3, 1, 4, 1, 5, 9, 2, 6}, o), a);
}

class Resume : public ::testing::TestWithParam<std::string> {};

TEST_P(Resume, SaveLoadContinueEqualsNeverStopping) {
  models::LMModel m(config(GetParam()), 7);
  m.to(DType::f64);
  const std::string path = temp_path(GetParam());
  for (double temperature : {0.0, 0.9}) {
    SamplingOptions o;
    o.temperature = temperature;
    o.top_p = 0.95;
    o.repetition_penalty = 1.3;
    o.seed = 17;
    o.max_new_tokens = 20;
    // Two sequences of different lengths: ragged KV caches in attention layers.
    Session whole(m, 2);
    whole.prefill_batch(kPrompts);
    const auto want = whole.generate_batch(o);

    Session first(m, 2);
    first.prefill_batch(kPrompts);
    o.max_new_tokens = 8;
    const auto head = first.generate_batch(o);
    first.save(path);
    Session resumed = Session::load(m, path);
    EXPECT_EQ(resumed.state().seen, first.state().seen);
    o.max_new_tokens = 12;
    const auto tail = resumed.generate_batch(o);
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      std::vector<int32_t> joined = head[i];
      joined.insert(joined.end(), tail[i].begin(), tail[i].end());
      EXPECT_EQ(joined, want[i]) << "temperature " << temperature << ", sequence " << i;
      EXPECT_EQ(resumed.tokens(static_cast<int64_t>(i)), whole.tokens(static_cast<int64_t>(i)));
    }
    // One sequence alone: the same through the free function with seed + i.
    SamplingOptions alone = o;
    alone.max_new_tokens = 20;
    alone.seed = o.seed + 1;
    EXPECT_EQ(generate(m, kPrompts[1], alone), want[1]);
  }
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Presets, Resume, ::testing::Values("hybrid-tiny", "mamba2-tiny"),
                         [](const auto& info) { return info.param == "hybrid-tiny" ? "hybrid" : "mamba2"; });

TEST(Session, StateFromAnotherModelIsAValueError) {
  models::LMModel m(config("hybrid-tiny"), 1);
  Session s(m);
  s.prefill({1, 2, 3});
  const std::string path = temp_path("other");
  s.save(path);
  EXPECT_NO_THROW(Session::load(m, path));
  models::LMModel other(config("gated_deltanet-tiny"), 1);
  EXPECT_THROW(Session::load(other, path), ValueError);
  models::ModelConfig deeper = config("hybrid-tiny");
  deeper.n_layer += 3;
  EXPECT_THROW(Session::load(models::LMModel(deeper, 1), path), ValueError);
  models::ModelConfig wider_vocab = config("hybrid-tiny");
  wider_vocab.vocab_size += 1;
  try {
    Session::load(models::LMModel(wider_vocab, 1), path);
    ADD_FAILURE() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(Session, StateFromTheSameConfigWithOtherWeightsIsAValueError) {
  // Issue 14 D6: the fingerprint covered config and shapes, so another model of the same config
  // continued the state.
  models::LMModel m(config("hybrid-tiny"), 1), other(config("hybrid-tiny"), 2);
  Session s(m);
  s.prefill({1, 2, 3});
  const std::string path = temp_path("weights");
  s.save(path);
  EXPECT_NE(model_fingerprint(m), model_fingerprint(other));
  EXPECT_NE(error_of<ValueError>([&] { Session::load(other, path); }).find("made by another model"), std::string::npos);
  EXPECT_NO_THROW(Session::load(m, path));
  std::filesystem::remove(path);
}

TEST(Session, StateMadeWithAnotherTokenizerIsAValueError) {
  // Issue 14 D6: the same model with another tokenizer read the saved token ids as other text.
  const std::string tok_a = ::testing::TempDir() + "lnx_gen_tok_a.json",
                    tok_b = ::testing::TempDir() + "lnx_gen_tok_b.json";
  std::ofstream(tok_a) << R"({"model": {"type": "BPE"}})";
  std::ofstream(tok_b) << R"({"model": {"type": "BPE"}} )";
  EXPECT_EQ(tokenizer_fingerprint(tok_a), tokenizer_fingerprint(tok_a));
  EXPECT_NE(tokenizer_fingerprint(tok_a), tokenizer_fingerprint(tok_b));
  EXPECT_NE(error_of<IOError>([&] { tokenizer_fingerprint(tok_a + ".missing"); }).find("cannot read tokenizer"),
            std::string::npos);
  models::LMModel m(config("hybrid-tiny"), 1);
  Session s(m);
  s.prefill({1, 2, 3});
  const std::string path = temp_path("tokenizer");
  s.save(path, tokenizer_fingerprint(tok_a));
  EXPECT_NE(error_of<ValueError>([&] {
              Session::load(m, path, tokenizer_fingerprint(tok_b));
            }).find("made with another tokenizer"),
            std::string::npos);
  EXPECT_NO_THROW(Session::load(m, path, tokenizer_fingerprint(tok_a)));
  EXPECT_NO_THROW(Session::load(m, path));  // the caller does not know its tokenizer
  s.save(path);                             // nor did the writer
  EXPECT_NO_THROW(Session::load(m, path, tokenizer_fingerprint(tok_b)));
  for (const std::string& f : {path, tok_a, tok_b}) std::filesystem::remove(f);
}

// Rewrites a state file with some tensors replaced and a checksum that matches them (what a
// crafted file does).
void forge(const std::string& path, const std::map<std::string, Tensor>& replace) {
  SafetensorsFile f = load_safetensors(path);
  TensorDict t;
  for (const auto& [name, x] : f.tensors) t.insert(name, replace.count(name) ? replace.at(name) : clone(x));
  std::map<std::string, std::string> meta = f.metadata;
  meta["checksum"] = state_file_checksum(t);
  save_safetensors(path, t, meta);
}

TEST(Session, CraftedCountsAreBoundedAndLoadingIsLinear) {
  models::LMModel m(config("hybrid-tiny"), 1);
  Session s(m, 2);
  s.prefill_batch({{1, 2}, {3}});
  const std::string path = temp_path("crafted");
  s.save(path);
  // Issue 14 D2: token counts summing past 2^64 overflowed and read out of bounds.
  forge(path, {{"token_counts", from_vector<int64_t>({int64_t{1} << 62, int64_t{1} << 62}, {2})},
               {"seen", from_vector<int64_t>({int64_t{1} << 62, int64_t{1} << 62}, {2})}});
  EXPECT_NE(error_of<IOError>([&] { Session::load(m, path); }).find("bad token count"), std::string::npos);
  // Issue 14 D3: a huge draw count made loading replay the generator for hours; now the
  // generator's words are set, and the count is only a count.
  s.save(path);
  forge(path, {{"generator_draws", from_vector<int64_t>({int64_t{1} << 62, int64_t{1} << 61}, {2})}});
  const auto t0 = std::chrono::steady_clock::now();
  Session loaded = Session::load(m, path);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  // A generator state of all zeros (xoshiro's fixed point) is refused.
  s.save(path);
  forge(path, {{"generator_state", zeros({12}, DType::i64)}});
  EXPECT_NE(error_of<IOError>([&] { Session::load(m, path); }).find("bad generator state"), std::string::npos);
  std::filesystem::remove(path);
}

TEST(Session, TruncatedOrCorruptedFileIsAnIOError) {
  models::LMModel m(config("mamba2-tiny"), 1);
  Session s(m);
  s.prefill({1, 2, 3, 4});
  const std::string path = temp_path("bad");
  s.save(path);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& b) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << b;
  };
  write(bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(Session::load(m, path), IOError);
  std::string corrupt = bytes;
  corrupt[10] = '\x01';  // inside the JSON header
  write(corrupt);
  EXPECT_THROW(Session::load(m, path), IOError);
  corrupt = bytes;
  corrupt[bytes.size() - 3] ^= 0x10;  // inside the tensor data: caught by the checksum
  write(corrupt);
  EXPECT_THROW(Session::load(m, path), IOError);
  write(bytes);
  EXPECT_NO_THROW(Session::load(m, path));
  std::filesystem::remove(path);
  EXPECT_THROW(Session::load(m, path), IOError);  // missing
}

TEST(Session, StepsAndMisuse) {
  models::LMModel m(config("hybrid-tiny"), 2);
  m.to(DType::f64);
  Session s(m);
  EXPECT_THROW(s.step(1), ValueError);  // nothing prefilled
  EXPECT_THROW(s.save(temp_path("empty")), ValueError);
  const Tensor after_prefill = s.prefill({1, 2, 3});
  const Tensor stepped = s.step(4);
  Session t(m);
  t.prefill({1, 2, 3, 4});
  EXPECT_TRUE(all_close(stepped, t.logits(), 1e-10));
  EXPECT_EQ(after_prefill.shape(), (Shape{31}));
  EXPECT_THROW(s.step(31), ValueError);
  Session two(m, 2);
  EXPECT_THROW(two.prefill({1}), ValueError);
  EXPECT_THROW(two.prefill_batch({{1}, {}}), ValueError);  // sequence 1 was never prefilled
  two.prefill_batch({{1, 2}, {3}});
  const Tensor both = two.prefill_batch({{}, {5, 6}});  // only sequence 1 moves on
  EXPECT_EQ(both.shape(), (Shape{2, 31}));
  EXPECT_EQ(two.tokens(0), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(two.tokens(1), (std::vector<int32_t>{3, 5, 6}));
  Session alone(m);
  alone.prefill({3, 5, 6});
  EXPECT_TRUE(all_close(two.logits(1), alone.logits(), 1e-10));
}

}  // namespace
}  // namespace lnx::generate
