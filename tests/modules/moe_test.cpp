// The sparse MoE feed-forward (modules/moe.h): its output equals a token-by-token reference
// written from the definition (softmax router, top-k, renormalisation, SwiGLU experts, the
// gated shared expert); gradients of the input and every parameter match finite differences;
// bad configurations are rejected.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "gradcheck.h"
#include "modules/moe.h"
#include "numeric.h"
#include "tensor/ops.h"

namespace lnx::modules {
namespace {

// One token's output, from the definition, in plain loops over the f64 weights.
std::vector<double> reference_token(const SparseMoE& m, const MoeConfig& c, const std::vector<double>& x) {
  const int64_t D = static_cast<int64_t>(x.size()), E = c.num_experts;
  auto linear = [&](const Tensor& w, const std::vector<double>& in) {  // w [O, I]
    const std::vector<double> wv = w.to_vector<double>();
    const int64_t O = w.size(0), I = w.size(1);
    std::vector<double> out(static_cast<size_t>(O), 0.0);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) out[o] += wv[o * I + i] * in[i];
    return out;
  };
  auto swiglu = [&](const SwiGLU& f, const std::vector<double>& in) {
    std::vector<double> g = linear(f.gate_proj.weight, in), u = linear(f.up_proj.weight, in);
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
    return linear(f.down_proj.weight, g);
  };
  std::vector<double> logits = linear(m.gate.weight, x), p(static_cast<size_t>(E));
  const double top = *std::max_element(logits.begin(), logits.end());
  double z = 0;
  for (int64_t e = 0; e < E; ++e) z += std::exp(logits[e] - top);
  for (int64_t e = 0; e < E; ++e) p[e] = std::exp(logits[e] - top) / z;
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  double chosen = 0;
  for (int64_t j = 0; j < c.top_k; ++j) chosen += p[order[j]];
  std::vector<double> y(static_cast<size_t>(D), 0.0);
  for (int64_t j = 0; j < c.top_k; ++j) {
    const double w = c.norm_topk_prob ? p[order[j]] / chosen : p[order[j]];
    const std::vector<double> out = swiglu(*m.experts[order[j]], x);
    for (int64_t d = 0; d < D; ++d) y[d] += w * out[d];
  }
  if (m.shared_expert) {
    const std::vector<double> s = swiglu(*m.shared_expert, x);
    const double gate = m.shared_expert_gate ? 1 / (1 + std::exp(-linear(m.shared_expert_gate->weight, x)[0])) : 1.0;
    for (int64_t d = 0; d < D; ++d) y[d] += gate * s[d];
  }
  return y;
}

MoeConfig config(int64_t experts, int64_t top_k, int64_t shared, bool norm) {
  MoeConfig c;
  c.num_experts = experts;
  c.top_k = top_k;
  c.expert_hidden = 6;
  c.shared_expert_hidden = shared;
  c.norm_topk_prob = norm;
  return c;
}

TEST(SparseMoE, EqualsTheDefinitionTokenByToken) {
  for (const MoeConfig& c : {config(5, 2, 7, true), config(4, 1, 0, false), config(3, 3, 5, true)}) {
    Generator gen(3);
    SparseMoE m(7, c, 9, gen, 0.3);
    m.to(DType::f64);
    const Tensor x = randn({2, 5, 7}, gen, DType::f64);
    const Tensor y = m.forward(x);
    ASSERT_EQ(y.shape(), x.shape());
    const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
    for (int64_t n = 0; n < 10; ++n) {
      const std::vector<double> ref =
          reference_token(m, c, std::vector<double>(xv.begin() + n * 7, xv.begin() + n * 7 + 7));
      for (int64_t d = 0; d < 7; ++d) EXPECT_NEAR(yv[n * 7 + d], ref[d], 1e-12) << "token " << n;
    }
  }
}

TEST(SparseMoE, GradientsOfInputAndEveryParameterMatchFiniteDifferences) {
  Generator gen(11);
  SparseMoE m(6, config(4, 2, 5, true), 5, gen, 0.4);
  m.to(DType::f64);
  TensorDict params = m.parameters();
  GradCase c;
  c.name = "moe";
  c.make_inputs = [&](Generator& g) {
    TensorList in{randn({3, 6}, g, DType::f64)};
    for (const auto& [name, p] : params) in.push_back(clone(p.detach()));
    return in;
  };
  c.fn = [&](const TensorList& in) {
    size_t i = 1;
    m.for_each_parameter([&](const std::string&, Tensor& slot) { slot = in[i++]; });
    return m.forward(in[0]);
  };
  c.rtol = 1e-5;
  c.atol = 1e-8;
  EXPECT_TRUE(check_gradients(c));
}

TEST(SparseMoE, BadConfigurationsAreRejected) {
  Generator gen(1);
  EXPECT_NE(error_of<ValueError>([&] { SparseMoE(4, config(3, 4, 0, true), 8, gen); }).find("top_k = 4"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([&] { SparseMoE(4, config(0, 1, 0, true), 8, gen); }).find("num_experts = 0"),
            std::string::npos);
}

}  // namespace
}  // namespace lnx::modules
