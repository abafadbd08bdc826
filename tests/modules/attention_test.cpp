// The attention mixer: parameters, a plain f64 re-computation of the layer (projections,
// RoPE, grouped-KV causal softmax with a window, o_proj), resuming from the KV cache, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "modules/attention/attention.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::modules {
namespace {

using Vec = std::vector<double>;

AttentionConfig config(int64_t H, int64_t HK, int64_t window) {
  AttentionConfig c;
  c.num_heads = H;
  c.num_kv_heads = HK;
  c.window = window;
  c.chunk_size = 4;
  return c;
}

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

// The layer on one sequence x [T, D] in f64, written out from the math.
Vec attention_by_hand(const Attention& m, const Vec& x, int64_t T, double theta, int64_t window) {
  const auto s = m.sizes();
  Vec q = project(x, m.q_proj.weight, T), k = project(x, m.k_proj.weight, T), v = project(x, m.v_proj.weight, T);
  // RoPE, half-split pairs (i, i + Dh/2) at position t with angle t·θ^(−2i/Dh).
  auto rope = [&](Vec& a, int64_t heads) {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < s.Dh / 2; ++i) {
          const double ang = t * std::pow(theta, -2.0 * i / s.Dh), c = std::cos(ang), sn = std::sin(ang);
          double& x1 = a[(t * heads + h) * s.Dh + i];
          double& x2 = a[(t * heads + h) * s.Dh + i + s.Dh / 2];
          const double a1 = x1 * c - x2 * sn, a2 = x2 * c + x1 * sn;
          x1 = a1, x2 = a2;
        }
  };
  rope(q, s.H);
  rope(k, s.HK);
  Vec o(static_cast<size_t>(T * s.H * s.Dh), 0.0);
  for (int64_t h = 0; h < s.H; ++h) {
    const int64_t hk = h / (s.H / s.HK);
    for (int64_t i = 0; i < T; ++i) {
      const int64_t j0 = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
      Vec p;
      double mx = -std::numeric_limits<double>::infinity(), z = 0;
      for (int64_t j = j0; j <= i; ++j) {
        double d = 0;
        for (int64_t e = 0; e < s.Dh; ++e) d += q[(i * s.H + h) * s.Dh + e] * k[(j * s.HK + hk) * s.Dh + e];
        p.push_back(d / std::sqrt(static_cast<double>(s.Dh)));
        mx = std::max(mx, p.back());
      }
      for (double& a : p) z += (a = std::exp(a - mx));
      for (int64_t j = j0; j <= i; ++j)
        for (int64_t e = 0; e < s.Dh; ++e) o[(i * s.H + h) * s.Dh + e] += p[j - j0] / z * v[(j * s.HK + hk) * s.Dh + e];
    }
  }
  return project(o, m.o_proj.weight, T);
}

TEST(AttentionMixer, ParameterNamesAndShapes) {
  Generator gen(1);
  ModelDims dims;
  dims.d_model = 32;
  auto m = make_mixer("attention", config(4, 2, 0), dims, gen);
  const TensorDict p = m->parameters();
  ASSERT_EQ(p.size(), 4u);  // no biases
  EXPECT_EQ(p.at("q_proj.weight").shape(), (Shape{32, 32}));
  EXPECT_EQ(p.at("k_proj.weight").shape(), (Shape{16, 32}));  // 2 kv heads of 8
  EXPECT_EQ(p.at("v_proj.weight").shape(), (Shape{16, 32}));
  EXPECT_EQ(p.at("o_proj.weight").shape(), (Shape{32, 32}));
  EXPECT_TRUE(mixer_spec("attention").block_mlp);
}

// Whole sequences against the hand computation, for both kernel forms, with and without a
// window; then the same sequence in two calls through the KV cache (positions from in.seen).
TEST(AttentionMixer, MatchesHandComputationAndResumes) {
  for (int64_t window : {0, 3}) {
    Generator gen(7 + window);
    ModelDims dims;
    dims.d_model = 16;
    AttentionConfig c = config(4, 2, window);
    c.rope_theta = 500.0;
    auto mixer = make_mixer("attention", c, dims, gen);
    mixer->to(DType::f64);
    const auto& m = dynamic_cast<const Attention&>(*mixer);
    const int64_t B = 2, T = 9;
    const Tensor x = randn({B, T, 16}, gen, DType::f64);
    Vec want;
    for (int64_t b = 0; b < B; ++b) {
      const Vec yb = attention_by_hand(m, select(x, 0, b).to_vector<double>(), T, 500.0, window);
      want.insert(want.end(), yb.begin(), yb.end());
    }
    const Tensor expected = from_vector(want, {B, T, 16});
    for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
      MixerInput in;
      in.x = x;
      in.mode = mode;
      const MixerOutput out = m.forward(in);
      EXPECT_TRUE(all_close(out.y, expected, 1e-12)) << "window " << window << " mode " << core::mode_name(mode);
      ASSERT_TRUE(out.state.has("k_cache"));
      // A sliding window keeps only the last window − 1 keys.
      const int64_t kept = window > 0 ? std::min<int64_t>(T, window - 1) : T;
      EXPECT_EQ(out.state.get("k_cache").shape(), (Shape{B, kept, 2, 4}));
      // Split after 5 tokens: the second call continues from the cache at positions 5 … 8.
      MixerInput first = in, second = in;
      first.x = slice(x, 1, 0, 5);
      const MixerOutput a = m.forward(first);
      second.x = slice(x, 1, 5, T);
      second.state = &a.state;
      second.seen = {5, 5};
      const MixerOutput b = m.forward(second);
      EXPECT_TRUE(all_close(concat({a.y, b.y}, 1), expected, 1e-12)) << "split, window " << window;
      EXPECT_TRUE(all_close(b.state.get("v_cache"), out.state.get("v_cache"), 1e-14));
    }
  }
}

// Two sequences with a KV cache each, continued by 6 and 2 tokens packed into one row: each
// equals its own call, and the caches then left (11 and 7 tokens seen; window 4 keeps the last
// 3 keys of each) continue both again.
TEST(AttentionMixer, PackedContinuationFromCache) {
  Generator gen(5);
  ModelDims dims;
  dims.d_model = 16;
  auto m = make_mixer("attention", config(4, 2, 4), dims, gen);
  m->to(DType::f64);
  MixerInput pre;
  pre.x = randn({2, 5, 16}, gen, DType::f64);
  const MixerOutput start = m->forward(pre);
  const Tensor cont = randn({1, 8, 16}, gen, DType::f64);
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    MixerInput packed;
    packed.x = cont;
    packed.state = &start.state;
    packed.cu_seqlens = from_vector(std::vector<int64_t>{0, 6, 8}, {3});
    packed.seen = {5, 5};
    packed.mode = mode;
    const MixerOutput out = m->forward(packed);
    EXPECT_EQ(out.state.get("k_cache").shape(), (Shape{2, 3, 2, 4}));
    EXPECT_EQ(out.state.get("cache_lengths").to_vector<int64_t>(), (std::vector<int64_t>{3, 3}));
    EXPECT_EQ(out.state.get("positions").to_vector<int64_t>(), (std::vector<int64_t>{11, 7}));
    const int64_t bounds[3] = {0, 6, 8};
    MixerOutput alone_out[2];
    for (int64_t n = 0; n < 2; ++n) {
      core::LayerState sn = m->select_sequence(start.state, n);
      MixerInput alone;
      alone.x = slice(cont, 1, bounds[n], bounds[n + 1]);
      alone.state = &sn;
      alone.mode = mode;  // positions from the cache length (in.seen left empty)
      alone_out[n] = m->forward(alone);
      EXPECT_TRUE(all_close(slice(out.y, 1, bounds[n], bounds[n + 1]), alone_out[n].y, 1e-12)) << n;
      const core::LayerState mine = m->select_sequence(out.state, n);
      EXPECT_TRUE(all_close(mine.get("k_cache"), alone_out[n].state.get("k_cache"), 0.0)) << n;
    }
    // One more token each from the ragged caches (one kernel call per sequence).
    MixerInput next;
    next.x = randn({2, 1, 16}, gen, DType::f64);
    next.state = &out.state;
    next.mode = mode;
    const MixerOutput both = m->forward(next);
    for (int64_t n = 0; n < 2; ++n) {
      MixerInput alone;
      alone.x = slice(next.x, 0, n, n + 1);
      alone.state = &alone_out[n].state;
      alone.mode = mode;
      EXPECT_TRUE(all_close(slice(both.y, 0, n, n + 1), m->forward(alone).y, 1e-12)) << n;
    }
    EXPECT_EQ(both.state.get("positions").to_vector<int64_t>(), (std::vector<int64_t>{12, 8}));
  }
}

// A padded batch with a mask (an empty row and a left-padded one): outputs and caches equal
// the rows run alone.
TEST(AttentionMixer, MaskedBatchOutputsMatchRowsAlone) {
  Generator gen(6);
  ModelDims dims;
  dims.d_model = 16;
  auto m = make_mixer("attention", config(4, 2, 0), dims, gen);
  m->to(DType::f64);
  const int64_t B = 3, T = 8;
  const int64_t begin[B] = {0, 0, 3}, end[B] = {8, 0, 7};
  const Tensor x = randn({B, T, 16}, gen, DType::f64);
  std::vector<double> mask(static_cast<size_t>(B * T), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = begin[b]; t < end[b]; ++t) mask[static_cast<size_t>(b * T + t)] = 1.0;
  for (core::Mode mode : {core::Mode::chunk, core::Mode::recurrent}) {
    const MixerOutput padded = forward_masked(*m, x, from_vector(mask, {B, T}), nullptr, mode);
    EXPECT_EQ(padded.state.get("cache_lengths").to_vector<int64_t>(), (std::vector<int64_t>{8, 0, 4}));
    for (int64_t b = 0; b < B; ++b) {
      if (end[b] == begin[b]) continue;
      MixerInput alone;
      alone.x = slice(slice(x, 0, b, b + 1), 1, begin[b], end[b]);
      alone.mode = mode;
      const MixerOutput row = m->forward(alone);
      EXPECT_TRUE(all_close(slice(slice(padded.y, 0, b, b + 1), 1, begin[b], end[b]), row.y, 1e-12));
      EXPECT_TRUE(all_close(m->select_sequence(padded.state, b).get("v_cache"), row.state.get("v_cache"), 0.0));
    }
  }
}

TEST(AttentionMixer, RejectsBadConfigs) {
  Generator gen(3);
  ModelDims dims;
  dims.d_model = 32;
  auto err = [&](const AttentionConfig& c) {
    return error_of<ValueError>([&] { make_mixer("attention", c, dims, gen); });
  };
  EXPECT_NE(err(config(4, 3, 0)).find("num_kv_heads = 3 does not divide num_heads = 4"), std::string::npos);
  EXPECT_NE(err(config(3, 0, 0)).find("num_heads = 3 does not divide d_model = 32"), std::string::npos);
  AttentionConfig odd = config(4, 0, 0);
  odd.head_dim = 5;
  EXPECT_NE(err(odd).find("head_dim = 5"), std::string::npos);
  EXPECT_NE(err(config(4, 0, -1)).find("window = -1"), std::string::npos);
  AttentionConfig chunk = config(4, 0, 0);
  chunk.chunk_size = 48;
  EXPECT_NE(err(chunk).find("chunk_size = 48"), std::string::npos);
}

// The attention term grows with the context, until the window caps it.
TEST(AttentionMixer, FlopsFollowContextAndWindow) {
  Generator gen(4);
  ModelDims dims;
  dims.d_model = 32;
  auto full = make_mixer("attention", config(4, 4, 0), dims, gen);
  auto win = make_mixer("attention", config(4, 4, 16), dims, gen);
  const double proj = 2.0 * 4 * 32 * 32;
  EXPECT_DOUBLE_EQ(full->flops_per_token(1), proj + 4.0 * 8 * 4 * 1);
  EXPECT_DOUBLE_EQ(full->flops_per_token(1001), proj + 4.0 * 8 * 4 * 501);
  EXPECT_DOUBLE_EQ(win->flops_per_token(16), full->flops_per_token(16));
  EXPECT_LT(win->flops_per_token(100000), proj + 4.0 * 8 * 4 * 16.0 + 1e-9);
}

}  // namespace
}  // namespace lnx::modules
