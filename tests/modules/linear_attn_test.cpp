// The linear-attention-family mixers (linear_attention, retnet, gla, hgrn2): parameter names
// and shapes as fla's checkpoints, the initial values the recipes fix, FLOP counts and config
// errors; linear attention against an f64 re-computation of its recipe through the reference
// kernel for every feature map, and its normalisation carried through split, packing and
// gradients. RetNet, GLA and HGRN2 recipes: gated_linear_attn_test.cpp. The block-protocol
// checks (decoding, padding, resume, gradients at the defaults) are in mixer_test.cpp.
//   B batch, T time, D model width, H heads, K key dim, V value dim, W conv width.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "gradcheck.h"
#include "linear_attn_test_util.h"
#include "modules/linear_attn/linear_attention.h"
#include "numeric.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {
namespace {

using namespace la_test;

// ---- parameter names and shapes (fla's checkpoint layout) ----

TEST(LinearAttnMixers, Parameters) {
  Generator gen(1);
  using Shapes = std::map<std::string, Shape>;
  // linear_attention: K = V = 8.
  EXPECT_EQ(shapes_of(*make_mixer("linear_attention", config_of("linear_attention"), dims_of(), gen)),
            (Shapes{{"q_proj.weight", {16, 16}},
                    {"k_proj.weight", {16, 16}},
                    {"v_proj.weight", {16, 16}},
                    {"norm.weight", {8}},
                    {"o_proj.weight", {16, 16}}}));
  // retnet: expand_v 2, K = 8, V = 16.
  Shapes retnet{{"q_proj.weight", {16, 16}}, {"k_proj.weight", {16, 16}},        {"v_proj.weight", {32, 16}},
                {"g_proj.weight", {32, 16}}, {"g_norm_swish_gate.weight", {16}}, {"o_proj.weight", {16, 32}}};
  MixerConfig c = config_of("retnet");
  EXPECT_EQ(shapes_of(*make_mixer("retnet", c, dims_of(), gen)), retnet);
  c.set("use_output_gate", false);
  retnet.erase("g_proj.weight");
  retnet.erase("g_norm_swish_gate.weight");
  retnet["g_norm.weight"] = {16};
  EXPECT_EQ(shapes_of(*make_mixer("retnet", c, dims_of(), gen)), retnet);
  // gla: expand_k 0.5, K = 4, V = 8, gate rank 16.
  Shapes gla{{"q_proj.weight", {8, 16}},  {"k_proj.weight", {8, 16}},     {"v_proj.weight", {16, 16}},
             {"g_proj.weight", {16, 16}}, {"gk_proj.0.weight", {16, 16}}, {"gk_proj.1.weight", {8, 16}},
             {"gk_proj.1.bias", {8}},     {"o_proj.weight", {16, 16}},    {"g_norm_swish_gate.weight", {8}}};
  c = config_of("gla");
  EXPECT_EQ(shapes_of(*make_mixer("gla", c, dims_of(), gen)), gla);
  c.set("use_short_conv", true);
  c.set("gate_low_rank_dim", 3);
  gla["q_conv1d.weight"] = {8, 4};
  gla["k_conv1d.weight"] = {8, 4};
  gla["v_conv1d.weight"] = {16, 4};
  gla["gk_proj.0.weight"] = {3, 16};
  gla["gk_proj.1.weight"] = {8, 3};
  EXPECT_EQ(shapes_of(*make_mixer("gla", c, dims_of(), gen)), gla);
  // hgrn2: K = head_dim 8 per head (fla's expand_ratio), V = D / H = 8.
  c = config_of("hgrn2");
  c.set("head_dim", 8);
  EXPECT_EQ(shapes_of(*make_mixer("hgrn2", c, dims_of(), gen)), (Shapes{{"q_proj.weight", {16, 16}},
                                                                        {"f_proj.weight", {16, 16}},
                                                                        {"i_proj.weight", {16, 16}},
                                                                        {"g_norm.weight", {16}},
                                                                        {"o_proj.weight", {16, 16}}}));
  c.set("head_dim", 4);
  c.set("use_short_conv", true);
  EXPECT_EQ(shapes_of(*make_mixer("hgrn2", c, dims_of(), gen)), (Shapes{{"q_proj.weight", {8, 16}},
                                                                        {"f_proj.weight", {8, 16}},
                                                                        {"i_proj.weight", {16, 16}},
                                                                        {"q_conv1d.weight", {8, 4}},
                                                                        {"f_conv1d.weight", {8, 4}},
                                                                        {"i_conv1d.weight", {16, 4}},
                                                                        {"g_norm.weight", {16}},
                                                                        {"o_proj.weight", {16, 16}}}));
}

TEST(LinearAttnMixers, InitialValues) {
  Generator gen(2);
  for (const char* name : {"linear_attention", "retnet", "gla", "hgrn2"}) {
    MixerConfig c = mixer_spec(name).defaults;
    ModelDims d = dims_of(64);
    d.init_std = 0.02;
    TensorDict p = make_mixer(name, c, d, gen)->parameters();
    for (const auto& [pname, t] : p) {
      auto v = to_dtype(t, DType::f64).to_vector<double>();
      if (pname.find("norm") != std::string::npos) {
        for (double e : v) EXPECT_EQ(e, 1.0) << name << " " << pname;
      } else if (pname.find("bias") != std::string::npos) {
        for (double e : v) EXPECT_EQ(e, 0.0) << name << " " << pname;
      } else {
        double s = 0;
        for (double e : v) s += e * e;
        EXPECT_NEAR(std::sqrt(s / static_cast<double>(v.size())), 0.02, 0.004) << name << " " << pname;
      }
    }
  }
}

// ---- each layer against its recipe, recomputed in f64 through the reference kernel ----

// fla LinearAttention: φ(q), φ(k), linear_attn (optionally normalised), per-head RMSNorm, o_proj.
Tensor recompute_linear_attention(const Mixer& m, const LinearAttentionConfig& c, const Tensor& x) {
  TensorDict p = m.parameters();
  const int64_t H = c.num_heads;
  Tensor q = linear_attention_feature_map(c.feature_map, heads(lin(x, p.at("q_proj.weight")), H));
  Tensor k = linear_attention_feature_map(c.feature_map, heads(lin(x, p.at("k_proj.weight")), H));
  Tensor v = heads(lin(x, p.at("v_proj.weight")), H);
  Tensor o = reference("linear_attn", {{"q", q}, {"k", k}, {"v", v}}, c.normalize).o;
  return lin(merge(rmsnorm(o, p.at("norm.weight"), 1e-5)), p.at("o_proj.weight"));
}

TEST(LinearAttnMixers, LinearAttentionMatchesRecipeForEveryFeatureMap) {
  const Tensor x = input(2, 37);
  for (const char* fm : {"identity", "relu", "elu_plus_one", "silu"})
    for (bool normalize : {false, true}) {
      if (normalize && std::string(fm) == "identity") continue;  // q·z may vanish: not a well-posed case
      auto c = config_of<LinearAttentionConfig>("linear_attention");
      c.feature_map = fm;
      c.normalize = normalize;
      auto m = make64("linear_attention", c);
      const Tensor want = recompute_linear_attention(*m, c, x);
      for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent})
        EXPECT_TRUE(all_close(run(*m, x, nullptr, mode).y, want, 1e-10)) << fm << " normalize " << normalize;
    }
}

TEST(LinearAttnMixers, LinearAttentionNormalisationSurvivesSplitAndPacking) {
  auto c = config_of<LinearAttentionConfig>("linear_attention");
  c.feature_map = "elu_plus_one";
  c.normalize = true;
  auto m = make64("linear_attention", c);
  const Tensor x = input(2, 40);
  MixerOutput whole = run(*m, x);
  ASSERT_TRUE(whole.state.has("key_sum"));
  EXPECT_EQ(whole.state.get("key_sum").shape(), (Shape{2, 2, 8}));
  for (int64_t split : {1, 17, 33}) {
    MixerOutput first = run(*m, slice(x, 1, 0, split));
    for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
      MixerOutput second = run(*m, slice(x, 1, split, 40), &first.state, mode);
      EXPECT_TRUE(all_close(concat({first.y, second.y}, 1), whole.y, 1e-10)) << "split " << split;
      EXPECT_TRUE(all_close(second.state.get("key_sum"), whole.state.get("key_sum"), 1e-10));
      EXPECT_TRUE(all_close(second.state.get("recurrent"), whole.state.get("recurrent"), 1e-10));
    }
  }
  // Both rows packed into one call, resuming from the split state, with an empty sequence.
  MixerOutput first = run(*m, slice(x, 1, 0, 17));
  core::LayerState three;  // sequences: row 0, an empty one, row 1
  for (const auto& [name, t] : first.state.tensors)
    three.set(name, concat({slice(t, 0, 0, 1), zeros_like(slice(t, 0, 0, 1)), slice(t, 0, 1, 2)}, 0));
  Tensor packed_x = concat({slice(slice(x, 0, 0, 1), 1, 17, 40), slice(slice(x, 0, 1, 2), 1, 17, 40)}, 1);
  Tensor cu = from_vector(std::vector<int64_t>{0, 23, 23, 46}, {4});
  MixerOutput packed = run(*m, packed_x, &three, core::Mode::chunk, {}, cu);
  EXPECT_TRUE(all_close(slice(packed.y, 1, 0, 23), slice(slice(whole.y, 0, 0, 1), 1, 17, 40), 1e-10));
  EXPECT_TRUE(all_close(slice(packed.y, 1, 23, 46), slice(slice(whole.y, 0, 1, 2), 1, 17, 40), 1e-10));
  const Tensor z = packed.state.get("key_sum");
  EXPECT_TRUE(all_close(slice(z, 0, 0, 1), slice(whole.state.get("key_sum"), 0, 0, 1), 1e-10));
  EXPECT_EQ(max_abs_error(slice(z, 0, 1, 2), zeros_like(slice(z, 0, 1, 2))), 0.0);
  EXPECT_TRUE(all_close(slice(z, 0, 2, 3), slice(whole.state.get("key_sum"), 0, 1, 2), 1e-10));
}

TEST(LinearAttnMixers, LinearAttentionNormalisedGradients) {
  auto c = config_of<LinearAttentionConfig>("linear_attention");
  c.feature_map = "elu_plus_one";
  c.normalize = true;
  auto m = make64("linear_attention", c);
  MixerOutput pre = run(*m, input(1, 3, 2));
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    GradCase g;
    g.name = "linear_attention_normalize";
    g.make_inputs = [&](Generator&) {
      return TensorList{input(1, 4, 9), clone(pre.state.get("recurrent").detach()),
                        clone(pre.state.get("key_sum").detach())};
    };
    g.fn = [&, mode](const TensorList& in) {
      core::LayerState st;
      st.set("recurrent", in[1]);
      st.set("key_sum", in[2]);
      MixerOutput out = run(*m, in[0], &st, mode);
      return concat({flatten(out.y), flatten(out.state.get("recurrent")), flatten(out.state.get("key_sum"))}, 0);
    };
    g.rtol = 1e-5;
    g.atol = 1e-8;
    EXPECT_TRUE(check_gradients(g)) << core::mode_name(mode);
  }
}

// ---- FLOP counts ----

TEST(LinearAttnMixers, FlopsPerToken) {
  Generator gen(1);
  // linear_attention, D = 16, H = 2, K = V = 8: 2·(4·16·16) + 4·2·8·8.
  EXPECT_DOUBLE_EQ(make_mixer("linear_attention", config_of("linear_attention"), dims_of(), gen)->flops_per_token(100),
                   2.0 * 4 * 256 + 4.0 * 2 * 64);
  // retnet: K = 8, V = 16; q, k: 16·16, v, g, o: 16·32.
  EXPECT_DOUBLE_EQ(make_mixer("retnet", config_of("retnet"), dims_of(), gen)->flops_per_token(100),
                   2.0 * (2 * 256 + 3 * 512) + 4.0 * 2 * 8 * 16);
  // gla: K = 4, V = 8; q, k: 16·8, v, g, o: 16·16, gk: 16·(16 + 8).
  EXPECT_DOUBLE_EQ(make_mixer("gla", config_of("gla"), dims_of(), gen)->flops_per_token(100),
                   2.0 * (2 * 128 + 3 * 256 + 16 * 24) + 4.0 * 2 * 4 * 8);
  // hgrn2: K = V = 8; q, f: 16·16, i, o: 16·16.
  EXPECT_DOUBLE_EQ(make_mixer("hgrn2", config_of("hgrn2"), dims_of(), gen)->flops_per_token(100),
                   2.0 * 4 * 256 + 4.0 * 2 * 8 * 8);
}

// ---- config errors ----

TEST(LinearAttnMixers, BadConfigsNameTheProblem) {
  Generator gen(1);
  auto err = [&](const std::string& name, const MixerConfig& c, const ModelDims& d = dims_of()) {
    return error_of<ValueError>([&] { make_mixer(name, c, d, gen); });
  };
  MixerConfig c = config_of("linear_attention");
  c.set("feature_map", "hedgehog");
  EXPECT_NE(err("linear_attention", c).find("unknown feature_map 'hedgehog'"), std::string::npos);
  c = config_of("linear_attention");
  c.set("num_heads", 3);
  EXPECT_NE(err("linear_attention", c).find("[linear_attention] num_heads = 3 does not divide"), std::string::npos);
  c = config_of("retnet");
  c.set("head_dim", 3);
  EXPECT_NE(err("retnet", c).find("must be even for RoPE"), std::string::npos);
  c = config_of("gla");
  c.set("expand_k", 0.3);
  EXPECT_NE(err("gla", c).find("[gla] num_heads = 2 does not divide the key width"), std::string::npos);
  c = config_of("gla");
  c.set("gate_low_rank_dim", 0);
  EXPECT_NE(err("gla", c).find("gate_low_rank_dim"), std::string::npos);
  c = config_of("hgrn2");
  c.set("num_heads", 3);
  EXPECT_NE(err("hgrn2", c).find("[hgrn2] num_heads = 3 does not divide d_model = 16"), std::string::npos);
  EXPECT_NE(err("hgrn2", config_of("hgrn2"), dims_of(kD, 4, 4)).find("layer_idx"), std::string::npos);
}

}  // namespace
}  // namespace lnx::modules
