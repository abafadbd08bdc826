// Registry-driven tests of every mixer: the block protocol's promises.
//  - chunk forward of a whole sequence = token-by-token recurrent decoding from the state
//    (f64, both outputs and final states), and the f32 layer against the f64 one (§8: 1e-5);
//  - a padded batch with a mask = the unpadded sequences run one by one;
//  - split-and-resume through the returned state = one call;
//  - finite-difference gradients (f64) of x, the incoming state and every parameter;
//  - bad configurations give clear errors;
//  - each mixer's own config (its typed struct behind MixerConfig) round-trips YAML with its
//    own keys only, rejects other mixers' keys, and its bounds errors name the mixer and key.
#include <gtest/gtest.h>

#include <cmath>
#include <variant>

#include "core/config.h"
#include "gradcheck.h"
#include "mixer_test_util.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::modules {
namespace {

using testing::tiny_config;
using testing::tiny_dims;

class MixerTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Mixer> make(DType dtype = DType::f64, uint64_t seed = 7) {
    const MixerSpec& spec = mixer_spec(GetParam());
    Generator gen(seed);
    auto m = spec.make(tiny_config(spec), tiny_dims(), gen);
    m->to(dtype);
    return m;
  }
  static Tensor input(int64_t B, int64_t T, DType dtype, uint64_t seed = 11) {
    Generator gen(seed);
    return to_dtype(randn({B, T, testing::kTestDModel}, gen, DType::f64), dtype);
  }
  static MixerOutput run(const Mixer& m, const Tensor& x, const core::LayerState* state, core::Mode mode,
                         std::vector<int64_t> seen = {}, const Tensor& cu_seqlens = Tensor()) {
    MixerInput in;
    in.x = x;
    in.state = state;
    in.mode = mode;
    in.seen = std::move(seen);
    in.cu_seqlens = cu_seqlens;
    return m.forward(in);
  }
};

void expect_states_close(const core::LayerState& a, const core::LayerState& b, double tol) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.has(name)) << name;
    EXPECT_TRUE(all_close(t, b.get(name), tol)) << "state " << name;
  }
}

TEST_P(MixerTest, ChunkForwardEqualsTokenByTokenDecoding) {
  auto m = make();
  const int64_t B = 2, T = 37;
  Tensor x = input(B, T, DType::f64);
  MixerOutput whole = run(*m, x, nullptr, core::Mode::chunk);
  ASSERT_EQ(whole.y.shape(), x.shape());
  core::LayerState state;
  TensorList ys;
  for (int64_t t = 0; t < T; ++t) {
    MixerOutput step = run(*m, slice(x, 1, t, t + 1), &state, core::Mode::recurrent, {t, t});
    ys.push_back(step.y);
    state = step.state;
  }
  EXPECT_TRUE(all_close(concat(ys, 1), whole.y, 1e-9));
  expect_states_close(state, whole.state, 1e-9);
}

TEST_P(MixerTest, Float32MatchesFloat64) {
  auto m64 = make(DType::f64), m32 = make(DType::f32);
  Tensor x = input(2, 45, DType::f64);
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    MixerOutput a = run(*m32, to_dtype(x, DType::f32), nullptr, mode);
    MixerOutput b = run(*m64, x, nullptr, mode);
    EXPECT_TRUE(all_close(a.y, b.y, 1e-5)) << core::mode_name(mode);
    expect_states_close(a.state, b.state, 1e-5);
  }
}

TEST_P(MixerTest, PaddedBatchWithMaskEqualsUnpaddedSequences) {
  auto m = make();
  const int64_t T = 29;
  const std::vector<int64_t> lengths = {29, 12, 0, 20};
  const std::vector<int64_t> left_pad = {0, 0, 0, 9};  // row 3 is left-padded
  const int64_t B = static_cast<int64_t>(lengths.size());
  Tensor x = input(B, T, DType::f64);
  std::vector<double> mask(static_cast<size_t>(B * T), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = left_pad[b]; t < left_pad[b] + lengths[b]; ++t) mask[static_cast<size_t>(b * T + t)] = 1.0;
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    MixerOutput padded = forward_masked(*m, x, from_vector(mask, {B, T}), nullptr, mode);
    ASSERT_EQ(padded.y.shape(), x.shape());
    for (int64_t b = 0; b < B; ++b) {
      const int64_t s = left_pad[b], e = s + lengths[b];
      Tensor row = slice(slice(padded.y, 0, b, b + 1), 1, s, e);
      if (lengths[b] > 0) {
        MixerOutput alone = run(*m, slice(slice(x, 0, b, b + 1), 1, s, e), nullptr, mode);
        EXPECT_TRUE(all_close(row, alone.y, 1e-10)) << "row " << b << " " << core::mode_name(mode);
        expect_states_close(m->select_sequence(padded.state, b), alone.state, 1e-10);
      }
      // Padding positions are zero.
      Tensor pad_before = slice(slice(padded.y, 0, b, b + 1), 1, 0, s);
      Tensor pad_after = slice(slice(padded.y, 0, b, b + 1), 1, e, T);
      EXPECT_EQ(max_abs_error(pad_before, zeros_like(pad_before)), 0.0);
      EXPECT_EQ(max_abs_error(pad_after, zeros_like(pad_after)), 0.0);
    }
  }
}

TEST_P(MixerTest, SplitAndResumeEqualsOneCall) {
  auto m = make();
  const int64_t B = 2, T = 40;
  Tensor x = input(B, T, DType::f64);
  MixerOutput whole = run(*m, x, nullptr, core::Mode::chunk);
  for (int64_t split : {1, 17, 32}) {
    MixerOutput first = run(*m, slice(x, 1, 0, split), nullptr, core::Mode::chunk);
    // With the positions given, and from the state alone (it records them).
    for (bool give_seen : {true, false}) {
      std::vector<int64_t> seen = give_seen ? std::vector<int64_t>{split, split} : std::vector<int64_t>{};
      MixerOutput second = run(*m, slice(x, 1, split, T), &first.state, core::Mode::chunk, seen);
      EXPECT_TRUE(all_close(concat({first.y, second.y}, 1), whole.y, 1e-10))
          << "split at " << split << " seen " << give_seen;
      expect_states_close(second.state, whole.state, 1e-10);
    }
  }
}

TEST_P(MixerTest, PackedSequencesWithStateEqualSeparateCalls) {
  auto m = make();
  const int64_t T0 = 9;
  Tensor prefix = input(2, T0, DType::f64, 3);
  MixerOutput start = run(*m, prefix, nullptr, core::Mode::chunk);
  // Continue sequence 0 by 21 tokens and sequence 1 by 5, packed into one row.
  Tensor cont = input(1, 26, DType::f64, 4);
  Tensor cu = from_vector(std::vector<int64_t>{0, 21, 26}, {3});
  MixerOutput packed = run(*m, cont, &start.state, core::Mode::chunk, {T0, T0}, cu);
  const int64_t bounds[3] = {0, 21, 26};
  for (int64_t n = 0; n < 2; ++n) {
    core::LayerState sn = m->select_sequence(start.state, n);
    MixerOutput alone = run(*m, slice(cont, 1, bounds[n], bounds[n + 1]), &sn, core::Mode::chunk, {T0});
    EXPECT_TRUE(all_close(slice(packed.y, 1, bounds[n], bounds[n + 1]), alone.y, 1e-10)) << "sequence " << n;
    expect_states_close(m->select_sequence(packed.state, n), alone.state, 1e-10);
  }
}

TEST_P(MixerTest, FiniteDifferenceGradients) {
  auto m = make(DType::f64, 5);
  // The state a 3-token prefix leaves, then a 4-token call resuming from it.
  MixerOutput pre = run(*m, input(1, 3, DType::f64, 2), nullptr, core::Mode::chunk);
  std::vector<std::string> state_names;
  for (const auto& [name, t] : pre.state.tensors) state_names.push_back(name);
  TensorDict params = m->parameters();
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    GradCase c;
    c.name = GetParam();
    c.make_inputs = [&](Generator&) {
      TensorList in{input(1, 4, DType::f64, 9)};
      for (const auto& n : state_names) in.push_back(clone(pre.state.get(n).detach()));
      for (const auto& [name, p] : params) in.push_back(clone(p.detach()));
      return in;
    };
    c.fn = [&, mode](const TensorList& in) {
      size_t i = 1;
      core::LayerState st;
      for (const auto& n : state_names) st.set(n, in[i++]);
      m->for_each_parameter([&](const std::string&, Tensor& slot) { slot = in[i++]; });
      MixerOutput out = run(*m, in[0], &st, mode, {3});
      TensorList parts{flatten(out.y)};
      for (const auto& [name, t] : out.state.tensors)
        if (is_floating(t.dtype())) parts.push_back(flatten(t));
      return concat(parts, 0);
    };
    c.rtol = 1e-5;
    c.atol = 1e-7;
    EXPECT_TRUE(check_gradients(c)) << core::mode_name(mode);
  }
}

TEST_P(MixerTest, BadConfigurationsAreRejected) {
  const MixerSpec& spec = mixer_spec(GetParam());
  Generator gen(1);
  if (testing::accepts(spec, "num_heads") || testing::accepts(spec, "head_dim")) {
    MixerConfig c = tiny_config(spec);
    if (c.has("num_heads")) c.set("num_heads", 0);
    if (c.has("head_dim")) c.set("head_dim", -1);
    try {
      make_mixer(GetParam(), c, tiny_dims(), gen);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_TRUE(m.find("num_heads") != std::string::npos || m.find("head_dim") != std::string::npos) << m;
      EXPECT_NE(m.find(GetParam()), std::string::npos) << m;
    }
  }
  // Configs come from files: no width computed from inf (every real option is bounded).
  for (const core::FieldInfo& f : spec.defaults.fields()) {
    if (f.type != "float") continue;
    MixerConfig c = tiny_config(spec);
    c.set(f.name, INFINITY);
    EXPECT_THROW(make_mixer(GetParam(), c, tiny_dims(), gen), ValueError) << f.name;
  }
  MixerConfig c = tiny_config(spec);
  if (testing::accepts(spec, "chunk_size")) {
    c.set("chunk_size", 24);  // not a power of two
    EXPECT_THROW(
        {
          auto m = spec.make(c, tiny_dims(), gen);
          MixerInput in;
          in.x = randn({1, 70, testing::kTestDModel}, gen);
          in.mode = core::Mode::chunk;
          m->forward(in);
        },
        Error);
  }
  auto m = spec.make(tiny_config(spec), tiny_dims(), gen);
  MixerInput in;
  in.x = randn({1, 5, testing::kTestDModel + 1}, gen);  // wrong width
  EXPECT_THROW(m->forward(in), Error);
}

// ---- the mixer's own config: declared once, read and written with its keys only ----

// Every field's value as text, in declaration order.
std::vector<std::string> texts(const MixerConfig& c) {
  std::vector<std::string> out;
  for (const auto& f : c.fields()) out.push_back(f.name + "=" + f.default_value);
  return out;
}

TEST_P(MixerTest, ConfigRoundTripsYamlWithItsOwnKeysOnly) {
  const MixerSpec& spec = mixer_spec(GetParam());
  ASSERT_FALSE(spec.defaults.empty());
  // Every field changed from its default, written and read back over the defaults.
  MixerConfig c = spec.defaults;
  for (const core::FieldInfo& f : c.fields()) {
    EXPECT_FALSE(f.help.empty()) << f.name;
    if (f.type == "bool")
      c.set(f.name, !std::get<bool>(c.get(f.name)));
    else if (f.type == "int")
      c.set(f.name, std::get<int64_t>(c.get(f.name)) + 3);
    else if (f.type == "float")
      c.set(f.name, std::get<double>(c.get(f.name)) + 0.25);
    else if (f.type == "string")
      c.set(f.name, "x_" + std::get<std::string>(c.get(f.name)));
  }
  EXPECT_NE(texts(c), texts(spec.defaults));
  const YAML::Node written = c.to_yaml();
  std::vector<std::string> written_keys;
  for (const auto& item : written) written_keys.push_back(item.first.Scalar());
  EXPECT_EQ(written_keys, c.keys());  // its own keys, each once, in declaration order
  MixerConfig back = spec.defaults;
  back.read_yaml(core::parse_yaml(core::to_yaml_string(written), "round trip"), "round trip");
  EXPECT_EQ(texts(back), texts(c));
  EXPECT_TRUE(back.same_type(spec.defaults));
  // A key of any other mixer that this one does not take is an error naming it and the keys.
  for (const auto& other : mixer_names())
    for (const auto& key : mixer_spec(other).defaults.keys()) {
      if (spec.defaults.has(key)) continue;
      MixerConfig d = spec.defaults;
      const std::string e = error_of<ValueError>(
          [&] { d.read_yaml(core::parse_yaml(key + ": 1\n", "t.yaml"), "t.yaml: layers." + GetParam()); });
      EXPECT_NE(e.find("unknown key '" + key + "'"), std::string::npos) << e;
      EXPECT_NE(e.find("valid keys: " + spec.defaults.keys()[0]), std::string::npos) << e;
    }
}

TEST_P(MixerTest, BoundsErrorsNameTheMixerAndTheKey) {
  const MixerSpec& spec = mixer_spec(GetParam());
  Generator gen(1);
  check_mixer_config(GetParam(), spec.defaults);  // the defaults are within bounds
  for (const core::FieldInfo& f : spec.defaults.fields()) {
    if (!f.bounds) continue;
    for (double bad : {f.bounds->lo - 1, f.bounds->hi * 2 + 1, double(NAN)}) {
      if (f.type == "int" && std::isnan(bad)) continue;
      MixerConfig c = tiny_config(spec);
      if (f.type == "int")
        c.set(f.name, static_cast<int64_t>(bad));
      else
        c.set(f.name, bad);
      const std::string e = error_of<ValueError>([&] { make_mixer(GetParam(), c, tiny_dims(), gen); });
      EXPECT_NE(e.find("[" + GetParam() + "] " + f.name + " = "), std::string::npos) << e;
      EXPECT_NE(e.find("expected"), std::string::npos) << e;
    }
  }
}

TEST(MixerConfigHandle, TypedAccessNamesAndTypes) {
  MixerConfig c = mixer_spec("attention").defaults;
  EXPECT_EQ(c.type_name(), "AttentionConfig");
  EXPECT_EQ(c.keys(), (std::vector<std::string>{
                          "num_heads", "head_dim", "num_kv_heads", "rope_theta", "window", "chunk_size", "qkv_bias",
                          "o_bias", "qk_norm", "rope_dim", "output_gate", "rope_scaling", "rope_scaling_factor",
                          "rope_low_freq_factor", "rope_high_freq_factor", "rope_original_context"}));
  c.set("window", 512);
  c.set("rope_theta", 500000);  // an integer sets a real field
  EXPECT_EQ(std::get<int64_t>(c.get("window")), 512);
  EXPECT_EQ(std::get<double>(c.get("rope_theta")), 500000.0);
  std::string e = error_of<ValueError>([&] { c.set("state_size", 4); });  // mamba's, not attention's
  EXPECT_NE(e.find("unknown option 'state_size'"), std::string::npos) << e;
  EXPECT_NE(e.find("num_heads, head_dim, num_kv_heads"), std::string::npos) << e;
  e = error_of<ValueError>([&] { c.set("window", 1.5); });
  EXPECT_NE(e.find("'window' must be int, got 1.5"), std::string::npos) << e;
  // A config of another mixer: typed access and building name both types.
  const MixerConfig gla = mixer_spec("gla").defaults;
  e = error_of<ValueError>([&] { (void)gla.get("window"); });
  EXPECT_NE(e.find("GlaConfig"), std::string::npos) << e;
  Generator gen(1);
  e = error_of<ValueError>([&] { make_mixer("attention", gla, testing::tiny_dims(), gen); });
  EXPECT_NE(e.find("[attention] the options are GlaConfig, not AttentionConfig"), std::string::npos) << e;
  EXPECT_TRUE(MixerConfig().empty());
  EXPECT_THROW(MixerConfig().keys(), ValueError);
  // Copies are deep.
  MixerConfig copy = c;
  copy.set("window", 3);
  EXPECT_EQ(std::get<int64_t>(c.get("window")), 512);
}

TEST(MixerRegistry, UnknownMixerNamesTheRegisteredOnes) {
  try {
    mixer_spec("no_such_mixer");
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_mixer"), std::string::npos);
    for (const auto& name : mixer_names()) EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << name;
  }
}

std::string mixer_test_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(AllMixers, MixerTest, ::testing::ValuesIn(mixer_names()), mixer_test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MixerTest);

}  // namespace
}  // namespace lnx::modules
