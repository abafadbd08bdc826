// RetNet, GLA and HGRN2 layers against f64 re-computations of fla's recipes through the
// reference kernel form (RoPE positions, output gates, short convs, HGRN2's lower bound), and
// their short-conv caches across split-and-resume. Parameters, initial values, FLOPs and config
// errors of all four mixers are in linear_attn_test.cpp.
//   B batch, T time, D model width, H heads, K key dim, V value dim, W conv width.
#include <gtest/gtest.h>

#include "linear_attn_test_util.h"
#include "modules/linear_attn/gla.h"
#include "modules/linear_attn/hgrn2.h"
#include "modules/linear_attn/retnet.h"
#include "modules/rope.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::modules {
namespace {

using namespace la_test;

// fla MultiScaleRetention: RoPE on q, k at positions from `seen`, retention, gated RMSNorm, o_proj.
TEST(LinearAttnMixers, RetNetMatchesRecipe) {
  for (bool gate : {true, false}) {
    auto c = config_of<RetNetConfig>("retnet");
    c.use_output_gate = gate;
    auto m = make64("retnet", c);
    TensorDict p = m->parameters();
    const Tensor x = input(2, 37);
    const std::vector<int64_t> seen = {0, 5};  // the layer's state is fresh; only positions shift
    const Tensor pos = token_positions(2, 37, Tensor(), seen);
    Tensor q = apply_rope(heads(lin(x, p.at("q_proj.weight")), 2), pos, 10000.0);
    Tensor k = apply_rope(heads(lin(x, p.at("k_proj.weight")), 2), pos, 10000.0);
    Tensor v = heads(lin(x, p.at("v_proj.weight")), 2);
    Tensor o = reference("retention", {{"q", q}, {"k", k}, {"v", v}}).o;
    o = gate ? mul(rmsnorm(o, p.at("g_norm_swish_gate.weight"), 1e-5), silu(heads(lin(x, p.at("g_proj.weight")), 2)))
             : rmsnorm(o, p.at("g_norm.weight"), 1e-5);
    const Tensor want = lin(merge(o), p.at("o_proj.weight"));
    for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent})
      EXPECT_TRUE(all_close(run(*m, x, nullptr, mode, seen).y, want, 1e-10)) << "gate " << gate;
  }
}

// fla GatedLinearAttention: (short convs + SiLU), gk = logsigmoid(low-rank(x)) / normalizer,
// gla, gated RMSNorm, o_proj.
TEST(LinearAttnMixers, GlaMatchesRecipe) {
  for (bool conv : {false, true}) {
    auto c = config_of<GlaConfig>("gla");
    c.use_short_conv = conv;
    c.gate_logit_normalizer = 4.0;
    auto m = make64("gla", c);
    TensorDict p = m->parameters();
    const Tensor x = input(2, 37);
    Tensor q = lin(x, p.at("q_proj.weight")), k = lin(x, p.at("k_proj.weight")), v = lin(x, p.at("v_proj.weight"));
    if (conv) {
      q = silu(causal_conv(q, p.at("q_conv1d.weight")));
      k = silu(causal_conv(k, p.at("k_conv1d.weight")));
      v = silu(causal_conv(v, p.at("v_conv1d.weight")));
    }
    Tensor gk = add(lin(lin(x, p.at("gk_proj.0.weight")), p.at("gk_proj.1.weight")), p.at("gk_proj.1.bias"));
    gk = div(logsigmoid(gk), 4.0);
    Tensor o = reference("gla", {{"q", heads(q, 2)}, {"k", heads(k, 2)}, {"v", heads(v, 2)}, {"g", heads(gk, 2)}}).o;
    o = mul(rmsnorm(o, p.at("g_norm_swish_gate.weight"), 1e-5), silu(heads(lin(x, p.at("g_proj.weight")), 2)));
    const Tensor want = lin(merge(o), p.at("o_proj.weight"));
    for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
      MixerOutput out = run(*m, x, nullptr, mode);
      EXPECT_TRUE(all_close(out.y, want, 1e-10)) << "conv " << conv;
      EXPECT_EQ(out.state.has("conv_q"), conv);
    }
  }
}

// fla HGRN2Attention: q = swish, f = lb + (1 − lb)σ(f_proj x), k = 1 − f, g = log f, gla with
// v = i_proj x, RMSNorm over all heads, o_proj.
TEST(LinearAttnMixers, Hgrn2MatchesRecipeWithLowerBound) {
  for (int64_t layer : {0, 3}) {
    auto c = config_of<Hgrn2Config>("hgrn2");
    c.head_dim = 4;
    auto m = make64("hgrn2", c, dims_of(kD, layer, 4));
    const double lb = static_cast<const HGRN2Attention&>(*m).lower_bound();
    EXPECT_DOUBLE_EQ(lb, layer / 4.0);
    TensorDict p = m->parameters();
    const Tensor x = input(2, 37);
    Tensor q = silu(lin(x, p.at("q_proj.weight")));
    Tensor f = add(mul(sigmoid(lin(x, p.at("f_proj.weight"))), 1.0 - lb), lb);
    Tensor i = lin(x, p.at("i_proj.weight"));
    Tensor o =
        reference("gla", {{"q", heads(q, 2)}, {"k", heads(1.0 - f, 2)}, {"v", heads(i, 2)}, {"g", heads(log(f), 2)}}).o;
    const Tensor want = lin(rmsnorm(merge(o), p.at("g_norm.weight"), 1e-5), p.at("o_proj.weight"));
    for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent})
      EXPECT_TRUE(all_close(run(*m, x, nullptr, mode).y, want, 1e-10)) << "layer " << layer;
  }
}

// Short convs carry their caches through split-and-resume (the registry test runs the defaults,
// which have none for gla and hgrn2).
TEST(LinearAttnMixers, ShortConvCachesResume) {
  for (const char* name : {"gla", "hgrn2"}) {
    MixerConfig c = config_of(name);
    c.set("use_short_conv", true);
    auto m = make64(name, c);
    const Tensor x = input(2, 30);
    MixerOutput whole = run(*m, x);
    MixerOutput first = run(*m, slice(x, 1, 0, 13));
    MixerOutput second = run(*m, slice(x, 1, 13, 30), &first.state, core::Mode::recurrent);
    EXPECT_TRUE(all_close(concat({first.y, second.y}, 1), whole.y, 1e-10)) << name;
    EXPECT_EQ(whole.state.tensors.size(), 4u) << name;
    for (const auto& [sname, t] : whole.state.tensors) EXPECT_TRUE(all_close(second.state.get(sname), t, 1e-10));
  }
}

}  // namespace
}  // namespace lnx::modules
