// The delta-rule mixers (deltanet, gated_deltanet, kda): parameter names and shapes as fla's
// checkpoints, the initialisations the recipes fix, the layer against an f64 re-computation
// of the recipe through the reference kernel form, the state each returns, option variants,
// FLOP counts and config errors. The block-protocol checks (decoding, padding, resume,
// gradients) are in mixer_test.cpp.
//   B batch, T time, D model width, H heads, K key dim, V value dim, R gate rank, W conv width.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <ostream>
#include <variant>

#include "kernels/mechanism.h"
#include "modules/linear_attn/gated_deltanet.h"
#include "modules/linear_attn/kda.h"
#include "numeric.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {
namespace {

constexpr int64_t kD = 16;

ModelDims dims_of(int64_t d_model = kD) {
  ModelDims d;
  d.d_model = d_model;
  d.norm_eps = 1e-5;
  return d;
}

// The spec's defaults with 2 heads of key dim 8 and chunk 16.
MixerConfig config_of(const std::string& name) {
  MixerConfig c = mixer_spec(name).defaults;
  c.set("num_heads", 2);
  c.set("head_dim", 8);
  c.set("chunk_size", 16);
  return c;
}

bool flag(const MixerConfig& c, const char* key) { return std::get<bool>(c.get(key)); }

std::map<std::string, Shape> shapes_of(const Module& m) {
  std::map<std::string, Shape> out;
  for (const auto& [name, t] : m.parameters()) out[name] = t.shape();
  return out;
}

// ---- parameter names and shapes (fla's checkpoint layout) ----

TEST(DeltaMixers, DeltaNetParameters) {
  Generator gen(1);
  auto c = config_of("deltanet").as<DeltaNetConfig>();  // K = V = 8, no output gate (fla's default)
  auto m = make_mixer("deltanet", c, dims_of(), gen);
  std::map<std::string, Shape> want = {
      {"q_proj.weight", {16, 16}},  {"k_proj.weight", {16, 16}},  {"v_proj.weight", {16, 16}},
      {"q_conv1d.weight", {16, 4}}, {"k_conv1d.weight", {16, 4}}, {"v_conv1d.weight", {16, 4}},
      {"b_proj.weight", {2, 16}},   {"o_norm.weight", {8}},       {"o_proj.weight", {16, 16}}};
  EXPECT_EQ(shapes_of(*m), want);
  c.use_output_gate = true;
  c.use_short_conv = false;
  m = make_mixer("deltanet", c, dims_of(), gen);
  want = {{"q_proj.weight", {16, 16}}, {"k_proj.weight", {16, 16}}, {"v_proj.weight", {16, 16}},
          {"b_proj.weight", {2, 16}},  {"g_proj.weight", {16, 16}}, {"o_norm.weight", {8}},
          {"o_proj.weight", {16, 16}}};
  EXPECT_EQ(shapes_of(*m), want);
}

TEST(DeltaMixers, GatedDeltaNetParameters) {
  Generator gen(1);
  auto c = config_of("gated_deltanet").as<GatedDeltaNetConfig>();  // K = 8, V = 16 (expand_v 2)
  auto m = make_mixer("gated_deltanet", c, dims_of(), gen);
  std::map<std::string, Shape> want = {{"q_proj.weight", {16, 16}},
                                       {"k_proj.weight", {16, 16}},
                                       {"v_proj.weight", {32, 16}},
                                       {"q_conv1d.weight", {16, 4}},
                                       {"k_conv1d.weight", {16, 4}},
                                       {"v_conv1d.weight", {32, 4}},
                                       {"a_proj.weight", {2, 16}},
                                       {"b_proj.weight", {2, 16}},
                                       {"A_log", {2}},
                                       {"dt_bias", {2}},
                                       {"g_proj.weight", {32, 16}},
                                       {"o_norm.weight", {16}},
                                       {"o_proj.weight", {16, 32}}};
  EXPECT_EQ(shapes_of(*m), want);
  c.use_output_gate = false;
  m = make_mixer("gated_deltanet", c, dims_of(), gen);
  want.erase("g_proj.weight");
  EXPECT_EQ(shapes_of(*m), want);
}

TEST(DeltaMixers, KdaParameters) {
  Generator gen(1);
  auto c = config_of("kda").as<KdaConfig>();  // K = V = 8; gate rank 0 = V as fla
  auto m = make_mixer("kda", c, dims_of(), gen);
  std::map<std::string, Shape> want = {{"q_proj.weight", {16, 16}},
                                       {"k_proj.weight", {16, 16}},
                                       {"v_proj.weight", {16, 16}},
                                       {"q_conv1d.weight", {16, 4}},
                                       {"k_conv1d.weight", {16, 4}},
                                       {"v_conv1d.weight", {16, 4}},
                                       {"f_proj.0.weight", {8, 16}},
                                       {"f_proj.1.weight", {16, 8}},
                                       {"b_proj.weight", {2, 16}},
                                       {"A_log", {2}},
                                       {"dt_bias", {16}},
                                       {"g_proj.0.weight", {8, 16}},
                                       {"g_proj.1.weight", {16, 8}},
                                       {"g_proj.1.bias", {16}},
                                       {"o_norm.weight", {8}},
                                       {"o_proj.weight", {16, 16}}};
  EXPECT_EQ(shapes_of(*m), want);
  c.gate_low_rank_dim = 3;
  c.expand_v = 0.5;
  c.use_output_gate = false;
  m = make_mixer("kda", c, dims_of(), gen);
  want = {{"q_proj.weight", {16, 16}},
          {"k_proj.weight", {16, 16}},
          {"v_proj.weight", {8, 16}},
          {"q_conv1d.weight", {16, 4}},
          {"k_conv1d.weight", {16, 4}},
          {"v_conv1d.weight", {8, 4}},
          {"f_proj.0.weight", {3, 16}},
          {"f_proj.1.weight", {16, 3}},
          {"b_proj.weight", {2, 16}},
          {"A_log", {2}},
          {"dt_bias", {16}},
          {"o_norm.weight", {4}},
          {"o_proj.weight", {16, 8}}};
  EXPECT_EQ(shapes_of(*m), want);
}

TEST(DeltaMixers, HeadDimZeroMeansModelWidthOverHeads) {
  Generator gen(1);
  GatedDeltaNetConfig c;
  c.num_heads = 4;
  auto m = make_mixer("gated_deltanet", c, dims_of(32), gen);
  const DeltaDims& d = dynamic_cast<const GatedDeltaNet&>(*m).sizes();
  EXPECT_EQ(d.K, 8);
  EXPECT_EQ(d.V, 16);
}

// ---- initialisations ----

double mean_of(const Tensor& t) { return mean(to_dtype(t, DType::f64)).item(); }
double min_of(const Tensor& t) {
  auto v = t.to_vector<double>();
  return *std::min_element(v.begin(), v.end());
}
double max_of(const Tensor& t) {
  auto v = t.to_vector<double>();
  return *std::max_element(v.begin(), v.end());
}
double std_of(const Tensor& t) {
  Tensor x = to_dtype(t, DType::f64);
  return std::sqrt(mean(square(sub(x, mean(x)))).item());
}

TEST(DeltaMixers, InitialisationsFollowTheRecipes) {
  Generator gen(3);
  GatedDeltaNetConfig c;
  c.num_heads = 64;
  c.head_dim = 8;
  ModelDims d = dims_of(64);
  d.init_std = 0.02;
  auto gdn = make_mixer("gated_deltanet", c, d, gen);
  TensorDict p = gdn->parameters();
  // A_log = log U(0, 16): A in (0, 16], mean about 8.
  Tensor A = exp(p.at("A_log"));
  EXPECT_GT(min_of(A), 0.0);
  EXPECT_LE(max_of(A), 16.0);
  EXPECT_NEAR(mean_of(A), 8.0, 2.0);
  // dt_bias = softplus⁻¹(dt), dt log-uniform in [0.001, 0.1]: mean log dt about log 0.01.
  Tensor dt = softplus(p.at("dt_bias"));
  EXPECT_GE(min_of(dt), 0.001 * (1 - 1e-5));
  EXPECT_LE(max_of(dt), 0.1 * (1 + 1e-5));
  EXPECT_NEAR(mean_of(log(dt)), std::log(0.01), 0.6);
  EXPECT_EQ(min_of(p.at("o_norm.weight")), 1.0);
  EXPECT_EQ(max_of(p.at("o_norm.weight")), 1.0);
  EXPECT_NEAR(std_of(p.at("q_proj.weight")), 0.02, 0.002);
  EXPECT_NEAR(std_of(p.at("o_proj.weight")), 0.02, 0.002);
  // fla's _init_weights gives the short convs N(0, init_std²) too (not PyTorch's U(±1/√W)).
  EXPECT_NEAR(std_of(p.at("q_conv1d.weight")), 0.02, 0.004);

  KdaConfig k;
  k.num_heads = 64;
  k.head_dim = 8;
  auto kda = make_mixer("kda", k, d, gen);
  p = kda->parameters();
  A = exp(p.at("A_log"));  // log U(1, 16)
  EXPECT_GE(min_of(A), 1.0 - 1e-6);
  EXPECT_LE(max_of(A), 16.0);
  EXPECT_NEAR(mean_of(A), 8.5, 2.0);
  dt = softplus(p.at("dt_bias"));  // [H·K], Mamba's dt init as fla's KDA model
  EXPECT_EQ(dt.numel(), 64 * 8);
  EXPECT_GE(min_of(dt), 0.001 * (1 - 1e-5));
  EXPECT_LE(max_of(dt), 0.1 * (1 + 1e-5));
  EXPECT_NEAR(mean_of(log(dt)), std::log(0.01), 0.3);
  EXPECT_EQ(max_of(abs(p.at("g_proj.1.bias"))), 0.0);
  EXPECT_EQ(min_of(p.at("o_norm.weight")), 1.0);
}

// ---- the layer against the recipe, recomputed in f64 through the reference kernel ----

Tensor lin(const Tensor& x, const Tensor& w) { return matmul(x, transpose(w, 0, 1)); }

// Causal depthwise conv from zero history, then SiLU: y[t, c] = silu(Σ_w W[c, w] x[t − (W−1) + w, c]).
Tensor conv_silu(const Tensor& x, const Tensor& w) {
  const int64_t T = x.size(1), W = w.size(1);
  Tensor xp = pad(x, {{0, 0}, {W - 1, 0}});
  Tensor y = zeros_like(x);
  for (int64_t i = 0; i < W; ++i) y = add(y, mul(slice(xp, 1, i, i + T), select(w, 1, i)));
  return silu(y);
}

Tensor l2norm(const Tensor& x) { return div(x, sqrt(add(sum(square(x), {-1}, true), 1e-6))); }

Tensor rmsnorm(const Tensor& x, const Tensor& w, double eps) {
  return mul(div(x, sqrt(add(mean(square(x), {-1}, true), eps))), w);
}

struct Recomputed {
  Tensor y, state;
};

// The recipe of fla's DeltaNet / GatedDeltaNet / KimiDeltaAttention layers, step by step.
Recomputed recompute(const std::string& name, const Mixer& m, const MixerConfig& c, const DeltaDims& d, double eps,
                     const Tensor& x) {
  TensorDict P = m.parameters();
  auto p = [&](const char* n) { return P.at(n); };
  const int64_t B = x.size(0), T = x.size(1), H = d.H, K = d.K, V = d.V;
  Tensor q = lin(x, p("q_proj.weight")), k = lin(x, p("k_proj.weight")), v = lin(x, p("v_proj.weight"));
  if (flag(c, "use_short_conv")) {
    q = conv_silu(q, p("q_conv1d.weight"));
    k = conv_silu(k, p("k_conv1d.weight"));
    v = conv_silu(v, p("v_conv1d.weight"));
  } else {
    q = silu(q), k = silu(k), v = silu(v);
  }
  TensorDict in;
  in.insert("q", l2norm(reshape(q, {B, T, H, K})));
  in.insert("k", l2norm(reshape(k, {B, T, H, K})));
  in.insert("v", reshape(v, {B, T, H, V}));
  in.insert("beta", sigmoid(lin(x, p("b_proj.weight"))));
  std::string kernel = "delta_rule";
  if (name == "gated_deltanet") {
    kernel = "gated_delta_rule";
    in.insert("g", mul(neg(exp(p("A_log"))), softplus(add(lin(x, p("a_proj.weight")), p("dt_bias")))));
  } else if (name == "kda") {
    kernel = "kda";
    Tensor f = reshape(lin(lin(x, p("f_proj.0.weight")), p("f_proj.1.weight")), {B, T, H, K});
    in.insert("g", mul(neg(reshape(exp(p("A_log")), {H, 1})), softplus(add(f, reshape(p("dt_bias"), {H, K})))));
  }
  kernels::MechanismOptions opt;
  opt.output_final_state = true;
  kernels::MechanismOutputs out = kernels::run(kernel, kernels::Form::reference, in, opt);
  Tensor o = rmsnorm(out.o, p("o_norm.weight"), eps);  // [B, T, H, V]
  if (flag(c, "use_output_gate")) {
    if (name == "kda") {
      Tensor gate = add(lin(lin(x, p("g_proj.0.weight")), p("g_proj.1.weight")), p("g_proj.1.bias"));
      o = mul(o, sigmoid(reshape(gate, {B, T, H, V})));
    } else {
      o = mul(o, silu(reshape(lin(x, p("g_proj.weight")), {B, T, H, V})));
    }
  }
  return {lin(reshape(o, {B, T, H * V}), p("o_proj.weight")), out.final_state};
}

struct Variant {
  std::string mixer;
  bool gate, conv;
  double expand_v;
  int64_t rank;
};

std::string variant_name(const Variant& v) {
  return v.mixer + (v.gate ? "_gate" : "_nogate") + (v.conv ? "_conv" : "_noconv") + "_v" +
         std::to_string(static_cast<int>(v.expand_v * 10)) + "_r" + std::to_string(v.rank);
}
void PrintTo(const Variant& v, std::ostream* os) { *os << variant_name(v); }

class DeltaRecipe : public ::testing::TestWithParam<Variant> {};

TEST_P(DeltaRecipe, LayerEqualsTheRecipeThroughTheReferenceKernel) {
  const Variant& var = GetParam();
  MixerConfig c = config_of(var.mixer);
  c.set("use_output_gate", var.gate);
  c.set("use_short_conv", var.conv);
  c.set("expand_v", var.expand_v);
  if (c.has("gate_low_rank_dim")) c.set("gate_low_rank_dim", var.rank);  // kda's
  Generator gen(21);
  ModelDims dims = dims_of();
  auto m = make_mixer(var.mixer, c, dims, gen);
  m->to(DType::f64);
  // Larger random weights than at init, and non-zero biases, so that every path matters.
  m->for_each_parameter([&](const std::string&, Tensor& slot) {
    Tensor t = add(slot.detach(), mul(randn(slot.shape(), gen, DType::f64), 0.3));
    t.set_requires_grad();
    slot = t;
  });
  const DeltaDims& d = dynamic_cast<const DeltaFamilyMixer&>(*m).sizes();
  Tensor x = randn({2, 37, kD}, gen, DType::f64);
  Recomputed want = recompute(var.mixer, *m, c, d, dims.norm_eps, x);
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    MixerInput in;
    in.x = x;
    in.mode = mode;
    MixerOutput got = m->forward(in);
    EXPECT_TRUE(all_close(got.y, want.y, 1e-10)) << core::mode_name(mode);
    EXPECT_TRUE(all_close(got.state.get("recurrent"), want.state, 1e-10)) << core::mode_name(mode);
    if (var.conv) {  // the caches hold the last W − 1 = 3 projected inputs
      TensorDict P = m->parameters();
      EXPECT_TRUE(all_close(got.state.get("conv_k"), slice(lin(x, P.at("k_proj.weight")), 1, 34, 37), 1e-12));
      EXPECT_TRUE(all_close(got.state.get("conv_v"), slice(lin(x, P.at("v_proj.weight")), 1, 34, 37), 1e-12));
    }
  }
}

std::string variant_test_name(const ::testing::TestParamInfo<Variant>& info) { return variant_name(info.param); }

INSTANTIATE_TEST_SUITE_P(
    Variants, DeltaRecipe,
    ::testing::Values(Variant{"deltanet", false, true, 1.0, 0}, Variant{"deltanet", true, true, 2.0, 0},
                      Variant{"deltanet", false, false, 1.0, 0}, Variant{"gated_deltanet", true, true, 2.0, 0},
                      Variant{"gated_deltanet", false, true, 1.0, 0}, Variant{"gated_deltanet", true, false, 1.5, 0},
                      Variant{"kda", true, true, 1.0, 0}, Variant{"kda", true, true, 2.0, 5},
                      Variant{"kda", false, false, 1.0, 3}),
    variant_test_name);

// ---- the state ----

TEST(DeltaMixers, StateHoldsTheRecurrentStateAndTheConvCaches) {
  for (const char* name : {"deltanet", "gated_deltanet", "kda"}) {
    Generator gen(2);
    MixerConfig c = config_of(name);
    auto m = make_mixer(name, c, dims_of(), gen);
    const DeltaDims& d = dynamic_cast<const DeltaFamilyMixer&>(*m).sizes();
    MixerInput in;
    in.x = randn({3, 5, kD}, gen);
    MixerOutput out = m->forward(in);
    EXPECT_EQ(out.y.shape(), (Shape{3, 5, kD})) << name;
    EXPECT_EQ(out.state.tensors.size(), 4u) << name;
    EXPECT_EQ(out.state.get("recurrent").shape(), (Shape{3, d.H, d.K, d.V})) << name;
    EXPECT_EQ(out.state.get("conv_q").shape(), (Shape{3, 3, d.H * d.K})) << name;
    EXPECT_EQ(out.state.get("conv_k").shape(), (Shape{3, 3, d.H * d.K})) << name;
    EXPECT_EQ(out.state.get("conv_v").shape(), (Shape{3, 3, d.H * d.V})) << name;
    c.set("use_short_conv", false);
    m = make_mixer(name, c, dims_of(), gen);
    out = m->forward(in);
    EXPECT_EQ(out.state.tensors.size(), 1u) << name;
    EXPECT_TRUE(out.state.has("recurrent")) << name;
  }
}

// ---- FLOPs: 2 per matmul weight, 2 per conv weight, and the kernel (6·K·V per head for
// the delta rule, one more K·V for the decay of the gated forms) ----

TEST(DeltaMixers, FlopsCountEveryWeightAndTheKernel) {
  for (const char* name : {"deltanet", "gated_deltanet", "kda"}) {
    for (bool gate : {false, true}) {
      Generator gen(2);
      MixerConfig c = config_of(name);
      c.set("use_output_gate", gate);
      auto m = make_mixer(name, c, dims_of(), gen);
      const DeltaDims& d = dynamic_cast<const DeltaFamilyMixer&>(*m).sizes();
      double want = (std::string(name) == "deltanet" ? 6.0 : 7.0) * static_cast<double>(d.H * d.K * d.V);
      for (const auto& [pname, t] : m->parameters())
        if (t.dim() == 2) want += 2.0 * static_cast<double>(t.numel());
      EXPECT_DOUBLE_EQ(m->flops_per_token(1000), want) << name << (gate ? " with gate" : "");
    }
  }
}

// ---- configuration errors ----

TEST(DeltaMixers, BadConfigurationsNameTheMixerAndTheValue) {
  Generator gen(1);
  auto error = [&](const char* name, MixerConfig c) {
    return error_of<ValueError>([&] { make_mixer(name, c, dims_of(), gen); });
  };
  MixerConfig c = config_of("gated_deltanet");
  c.set("num_heads", 3);
  c.set("head_dim", 0);
  EXPECT_NE(error("gated_deltanet", c).find("[gated_deltanet] num_heads = 3 does not divide d_model = 16"),
            std::string::npos);
  c = config_of("deltanet");
  c.set("num_heads", 0);
  EXPECT_NE(error("deltanet", c).find("[deltanet] num_heads = 0 must be positive"), std::string::npos);
  c = config_of("kda");
  c.set("expand_v", 0.3);  // 2.4 values per head
  EXPECT_NE(error("kda", c).find("[kda] expand_v = 0.3 times head_dim = 8"), std::string::npos);
  c = config_of("kda");
  c.set("gate_low_rank_dim", -1);
  EXPECT_NE(error("kda", c).find("[kda] gate_low_rank_dim = -1"), std::string::npos);
  c = config_of("deltanet");
  c.set("chunk_size", 24);
  EXPECT_NE(error("deltanet", c).find("[deltanet] chunk_size = 24: expected a power of two"), std::string::npos);
  c = config_of("gated_deltanet");
  c.set("conv_size", 0);
  EXPECT_NE(error("gated_deltanet", c).find("[gated_deltanet] conv_size = 0"), std::string::npos);
  c.set("use_short_conv", false);  // the conv size does not matter then
  EXPECT_EQ(error("gated_deltanet", c), "<no error>");
  c = config_of("gated_deltanet");
  c.set("head_dim", -2);
  EXPECT_NE(error("gated_deltanet", c).find("head_dim = -2"), std::string::npos);
}

}  // namespace
}  // namespace lnx::modules
