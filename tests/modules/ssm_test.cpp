// The mamba and mamba2 mixers: parameters and their initial values, the layers against a
// plain f64 re-computation written out from mamba_ssm's recipes (both kernel forms, and the
// sequence split in two calls through the returned state), and config errors.
#include <gtest/gtest.h>

#include <cmath>

#include "modules/ssm/mamba.h"
#include "modules/ssm/mamba2.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::modules {
namespace {

using Vec = std::vector<double>;

double silu1(double a) { return a / (1 + std::exp(-a)); }
double softplus1(double a) { return a > 20 ? a : std::log1p(std::exp(a)); }

// out [rows, O] = in [rows, I] · Wᵀ, W [O, I] row-major.
Vec project(const Vec& in, const Tensor& W, int64_t rows) {
  const int64_t O = W.size(0), I = W.size(1);
  const Vec w = W.to_vector<double>();
  Vec out(static_cast<size_t>(rows * O), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) out[r * O + o] += in[r * I + i] * w[o * I + i];
  return out;
}

// Causal depthwise conv + bias + SiLU over columns [c0, c0 + C) of a [T, stride] matrix.
Vec conv_silu(const Vec& in, int64_t T, int64_t stride, int64_t c0, const ShortConv& conv) {
  const int64_t C = conv.weight.size(0), W = conv.weight.size(1);
  const Vec w = conv.weight.to_vector<double>(), b = conv.bias->to_vector<double>();
  Vec out(static_cast<size_t>(T * C));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double a = b[c];
      for (int64_t k = 0; k < W; ++k) {
        const int64_t src = t - (W - 1) + k;
        if (src >= 0) a += w[c * W + k] * in[src * stride + c0 + c];
      }
      out[t * C + c] = silu1(a);
    }
  return out;
}

// Runs a mixer on x whole (both kernel forms) and split after `cut` tokens through the
// returned state; every result must match `expected` [B, T, D].
void expect_layer(const Mixer& m, const Tensor& x, const Tensor& expected, int64_t cut, double tol) {
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    MixerInput in;
    in.x = x;
    in.mode = mode;
    EXPECT_TRUE(all_close(m.forward(in).y, expected, tol)) << core::mode_name(mode);
    MixerInput first = in, second = in;
    first.x = slice(x, 1, 0, cut);
    const MixerOutput a = m.forward(first);
    EXPECT_TRUE(a.state.has("recurrent") && a.state.has("conv"));
    second.x = slice(x, 1, cut, x.size(1));
    second.state = &a.state;
    EXPECT_TRUE(all_close(concat({a.y, m.forward(second).y}, 1), expected, tol)) << "split, " << core::mode_name(mode);
  }
}

// ---------------------------------------------------------------- mamba

MambaConfig mamba_config() {
  MambaConfig c;
  c.state_size = 4;
  c.dt_rank = 3;
  c.chunk_size = 4;
  return c;
}

// mamba_ssm's Mamba.forward on one sequence x [T, D], fresh state.
Vec mamba_by_hand(const Mamba& m, const Vec& x, int64_t T) {
  const auto s = m.sizes();
  const Vec xz = project(x, m.in_proj.weight, T);  // [T, 2E]: u, z
  const Vec u = conv_silu(xz, T, 2 * s.E, 0, m.conv1d);
  const Vec dbc = project(u, m.x_proj.weight, T);  // [T, R + 2S]: dt_low, B, C
  const Vec dtw = m.dt_proj.weight.to_vector<double>(), dtb = m.dt_proj.bias->to_vector<double>();
  const Vec A_log = m.A_log.to_vector<double>(), Dp = m.D.to_vector<double>();
  const int64_t R = s.R, S = s.S, E = s.E, F = R + 2 * S;
  Vec h(static_cast<size_t>(E * S), 0.0), g(static_cast<size_t>(T * E));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) {
      double dt = dtb[e];
      for (int64_t r = 0; r < R; ++r) dt += dtw[e * R + r] * dbc[t * F + r];
      const double delta = softplus1(dt), ue = u[t * E + e];
      double y = Dp[e] * ue;
      for (int64_t n = 0; n < S; ++n) {
        double& hn = h[e * S + n];
        hn = std::exp(-delta * std::exp(A_log[e * S + n])) * hn + delta * dbc[t * F + R + n] * ue;
        y += dbc[t * F + R + S + n] * hn;
      }
      g[t * E + e] = y * silu1(xz[t * 2 * E + E + e]);
    }
  return project(g, m.out_proj.weight, T);
}

TEST(MambaMixer, ParametersAndInitialValues) {
  Generator gen(1);
  ModelDims dims;
  dims.d_model = 16;
  auto mixer = make_mixer("mamba", mamba_config(), dims, gen);
  const TensorDict p = mixer->parameters();
  const int64_t E = 32, S = 4, R = 3;
  ASSERT_EQ(p.size(), 9u);
  EXPECT_EQ(p.at("in_proj.weight").shape(), (Shape{2 * E, 16}));
  EXPECT_EQ(p.at("conv1d.weight").shape(), (Shape{E, 4}));
  EXPECT_EQ(p.at("conv1d.bias").shape(), (Shape{E}));
  EXPECT_EQ(p.at("x_proj.weight").shape(), (Shape{R + 2 * S, E}));
  EXPECT_EQ(p.at("dt_proj.weight").shape(), (Shape{E, R}));
  EXPECT_EQ(p.at("dt_proj.bias").shape(), (Shape{E}));
  EXPECT_EQ(p.at("A_log").shape(), (Shape{E, S}));
  EXPECT_EQ(p.at("D").shape(), (Shape{E}));
  EXPECT_EQ(p.at("out_proj.weight").shape(), (Shape{16, E}));
  const Vec A_log = p.at("A_log").to_vector<double>();
  for (int64_t e = 0; e < E; ++e)
    for (int64_t n = 0; n < S; ++n) EXPECT_NEAR(A_log[e * S + n], std::log(n + 1.0), 1e-6);
  for (double d : p.at("D").to_vector<double>()) EXPECT_EQ(d, 1.0);
  for (double w : p.at("dt_proj.weight").to_vector<double>()) EXPECT_LE(std::abs(w), 1 / std::sqrt(3.0));
  for (double b : p.at("dt_proj.bias").to_vector<double>()) {
    EXPECT_GE(softplus1(b), 1e-3 * (1 - 1e-4));
    EXPECT_LE(softplus1(b), 0.1 * (1 + 1e-4));
  }
  EXPECT_FALSE(mixer_spec("mamba").block_mlp);
  EXPECT_EQ(make_mixer("mamba", mixer_spec("mamba").defaults, dims, gen)->parameters().at("dt_proj.weight").size(1), 1);
}

TEST(MambaMixer, MatchesHandComputationAndResumes) {
  Generator gen(11);
  ModelDims dims;
  dims.d_model = 16;
  auto mixer = make_mixer("mamba", mamba_config(), dims, gen);
  mixer->to(DType::f64);
  const auto& m = dynamic_cast<const Mamba&>(*mixer);
  const int64_t B = 2, T = 11;
  const Tensor x = randn({B, T, 16}, gen, DType::f64);
  Vec want;
  for (int64_t b = 0; b < B; ++b) {
    const Vec yb = mamba_by_hand(m, select(x, 0, b).to_vector<double>(), T);
    want.insert(want.end(), yb.begin(), yb.end());
  }
  expect_layer(m, x, from_vector(want, {B, T, 16}), 6, 1e-11);
}

TEST(MambaMixer, RejectsBadConfigs) {
  Generator gen(3);
  ModelDims dims;
  dims.d_model = 16;
  auto err = [&](const MambaConfig& c) { return error_of<ValueError>([&] { make_mixer("mamba", c, dims, gen); }); };
  MambaConfig c = mamba_config();
  c.expand = 1.03;
  EXPECT_NE(err(c).find("[mamba] expand = 1.03"), std::string::npos);
  c = mamba_config();
  c.state_size = 0;
  EXPECT_NE(err(c).find("state_size = 0"), std::string::npos);
  c = mamba_config();
  c.conv_size = 1;
  EXPECT_NE(err(c).find("conv_size = 1"), std::string::npos);
  c = mamba_config();
  c.dt_rank = -2;
  EXPECT_NE(err(c).find("dt_rank = -2"), std::string::npos);
}

// ---------------------------------------------------------------- mamba2

Mamba2Config mamba2_config(int64_t groups) {
  Mamba2Config c;
  c.head_dim = 8;
  c.state_size = 4;
  c.n_groups = groups;
  c.chunk_size = 4;
  return c;
}

// mamba_ssm's Mamba2.forward on one sequence x [T, D], fresh state.
Vec mamba2_by_hand(const Mamba2& m, const Vec& x, int64_t T) {
  const auto s = m.sizes();
  const int64_t E = s.E, H = s.H, P = s.P, G = s.G, S = s.S, CD = s.conv_dim(), F = E + CD + H;
  const Vec zxd = project(x, m.in_proj.weight, T);  // [T, F]: z, xBC, dt
  const Vec c = conv_silu(zxd, T, F, E, m.conv1d);  // [T, CD]: x, B, C
  const Vec dtb = m.dt_bias.to_vector<double>(), A_log = m.A_log.to_vector<double>();
  const Vec Dp = m.D.to_vector<double>(), nw = m.norm.weight.to_vector<double>();
  Vec st(static_cast<size_t>(H * S * P), 0.0), out(static_cast<size_t>(T * E));
  for (int64_t t = 0; t < T; ++t) {
    Vec y(static_cast<size_t>(E));
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / G);
      const double delta = softplus1(zxd[t * F + E + CD + h] + dtb[h]), decay = std::exp(-delta * std::exp(A_log[h]));
      for (int64_t p = 0; p < P; ++p) {
        const double xp = c[t * CD + h * P + p];
        double acc = Dp[h] * xp;
        for (int64_t n = 0; n < S; ++n) {
          double& sv = st[(h * S + n) * P + p];
          sv = decay * sv + delta * c[t * CD + E + g * S + n] * xp;
          acc += c[t * CD + E + G * S + g * S + n] * sv;
        }
        y[h * P + p] = acc * silu1(zxd[t * F + h * P + p]);  // gate before the norm
      }
    }
    const int64_t gs = E / G;  // RMSNormGated's group_size
    for (int64_t g = 0; g < G; ++g) {
      double ms = 0;
      for (int64_t e = g * gs; e < (g + 1) * gs; ++e) ms += y[e] * y[e] / gs;
      for (int64_t e = g * gs; e < (g + 1) * gs; ++e) out[t * E + e] = y[e] / std::sqrt(ms + 1e-5) * nw[e];
    }
  }
  return project(out, m.out_proj.weight, T);
}

TEST(Mamba2Mixer, ParametersAndInitialValues) {
  Generator gen(2);
  ModelDims dims;
  dims.d_model = 16;
  auto mixer = make_mixer("mamba2", mamba2_config(2), dims, gen);
  const TensorDict p = mixer->parameters();
  const int64_t E = 32, H = 4, G = 2, S = 4;
  ASSERT_EQ(p.size(), 8u);
  EXPECT_EQ(p.at("in_proj.weight").shape(), (Shape{2 * E + 2 * G * S + H, 16}));
  EXPECT_EQ(p.at("conv1d.weight").shape(), (Shape{E + 2 * G * S, 4}));
  EXPECT_EQ(p.at("conv1d.bias").shape(), (Shape{E + 2 * G * S}));
  EXPECT_EQ(p.at("dt_bias").shape(), (Shape{H}));
  EXPECT_EQ(p.at("A_log").shape(), (Shape{H}));
  EXPECT_EQ(p.at("D").shape(), (Shape{H}));
  EXPECT_EQ(p.at("norm.weight").shape(), (Shape{E}));
  EXPECT_EQ(p.at("out_proj.weight").shape(), (Shape{16, E}));
  for (double a : p.at("A_log").to_vector<double>()) {
    EXPECT_GE(std::exp(a), 1.0 - 1e-5);
    EXPECT_LE(std::exp(a), 16.0 + 1e-4);
  }
  for (double b : p.at("dt_bias").to_vector<double>()) {
    EXPECT_GE(softplus1(b), 1e-3 * (1 - 1e-4));
    EXPECT_LE(softplus1(b), 0.1 * (1 + 1e-4));
  }
  for (double d : p.at("D").to_vector<double>()) EXPECT_EQ(d, 1.0);
  for (double w : p.at("norm.weight").to_vector<double>()) EXPECT_EQ(w, 1.0);
  EXPECT_FALSE(mixer_spec("mamba2").block_mlp);
  // head_dim 0: 64 as mamba_ssm, or d_inner when narrower.
  auto wide = make_mixer("mamba2", mixer_spec("mamba2").defaults, ModelDims{64}, gen);
  EXPECT_EQ(dynamic_cast<const Mamba2&>(*wide).sizes().H, 2);
  auto narrow = make_mixer("mamba2", mixer_spec("mamba2").defaults, dims, gen);
  EXPECT_EQ(dynamic_cast<const Mamba2&>(*narrow).sizes().H, 1);
}

TEST(Mamba2Mixer, MatchesHandComputationAndResumes) {
  for (int64_t groups : {1, 2}) {
    Generator gen(20 + groups);
    ModelDims dims;
    dims.d_model = 16;
    auto mixer = make_mixer("mamba2", mamba2_config(groups), dims, gen);
    mixer->to(DType::f64);
    // A non-trivial norm weight, so a wrong grouping or order would show.
    mixer->for_each_parameter([&](const std::string& name, Tensor& t) {
      if (name == "norm.weight") {
        t = add(t.detach(), mul(randn(t.shape(), gen, DType::f64), 0.3));
        t.set_requires_grad();
      }
    });
    const auto& m = dynamic_cast<const Mamba2&>(*mixer);
    const int64_t B = 2, T = 10;
    const Tensor x = randn({B, T, 16}, gen, DType::f64);
    Vec want;
    for (int64_t b = 0; b < B; ++b) {
      const Vec yb = mamba2_by_hand(m, select(x, 0, b).to_vector<double>(), T);
      want.insert(want.end(), yb.begin(), yb.end());
    }
    SCOPED_TRACE("n_groups " + std::to_string(groups));
    expect_layer(m, x, from_vector(want, {B, T, 16}), 3, 1e-11);
  }
}

TEST(Mamba2Mixer, RejectsBadConfigs) {
  Generator gen(3);
  ModelDims dims;
  dims.d_model = 16;
  auto err = [&](const Mamba2Config& c) { return error_of<ValueError>([&] { make_mixer("mamba2", c, dims, gen); }); };
  Mamba2Config c = mamba2_config(1);
  c.head_dim = 5;
  EXPECT_NE(err(c).find("[mamba2] head_dim = 5 does not divide d_inner = 32"), std::string::npos);
  c = mamba2_config(3);
  EXPECT_NE(err(c).find("n_groups = 3 does not divide the 4 heads"), std::string::npos);
  c = mamba2_config(1);
  c.chunk_size = 6;
  EXPECT_NE(err(c).find("chunk_size = 6"), std::string::npos);
  c = mamba2_config(1);
  c.expand = 0;
  EXPECT_NE(err(c).find("expand = 0"), std::string::npos);
}

}  // namespace
}  // namespace lnx::modules
