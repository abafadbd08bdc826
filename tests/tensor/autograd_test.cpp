// The autodiff machinery: backward, grad accumulation, no_grad, stop_gradient,
// value_and_grad, custom vjps, checkpoint, and its error messages.
#include <gtest/gtest.h>

#include "numeric.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

Tensor f64_randn(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, g, DType::f64);
}

TEST(Autograd, GradientAccumulatesWhenATensorIsUsedTwice) {
  Tensor x = f64_randn({4}, 1).set_requires_grad();
  Tensor y = sum(add(mul(x, x), x));  // d/dx = 2x + 1
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), add(mul(x.detach(), 2.0), 1.0), 1e-15));
  // A second backward through a fresh graph adds to the stored gradient.
  sum(x).backward();
  EXPECT_TRUE(all_close(x.grad(), add(mul(x.detach(), 2.0), 2.0), 1e-15));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAClearError) {
  Tensor x = f64_randn({3}, 2).set_requires_grad();
  Tensor y = sum(exp(x));
  y.backward();
  try {
    y.backward();
    FAIL() << "expected AutogradError";
  } catch (const AutogradError& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
}

TEST(Autograd, RetainGraphAllowsRepeatedBackward) {
  Tensor x = f64_randn({3}, 3).set_requires_grad();
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), mul(exp(x.detach()), 2.0), 1e-15));
}

TEST(Autograd, NonScalarOutputNeedsAnExplicitGradient) {
  Tensor x = f64_randn({3}, 4).set_requires_grad();
  Tensor y = exp(x);
  EXPECT_THROW(y.backward(), AutogradError);
  Tensor g = f64_randn({3}, 5);
  y.backward(g);
  EXPECT_TRUE(all_close(x.grad(), mul(g, exp(x.detach())), 1e-15));
}

TEST(Autograd, BackwardWithoutAnyGradientInputIsAnError) {
  Tensor x = f64_randn({3}, 6);
  EXPECT_THROW(sum(x).backward(), AutogradError);
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Tensor x = f64_randn({3}, 7).set_requires_grad();
  Tensor y;
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    y = exp(x);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(exp(x).requires_grad());
}

TEST(Autograd, StopGradientCutsThePath) {
  Tensor x = f64_randn({3}, 8).set_requires_grad();
  Tensor y = sum(mul(x, stop_gradient(x)));  // d/dx = stop(x)
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), x.detach(), 1e-15));
}

TEST(Autograd, IntegerTensorsCannotRequireGrad) {
  Tensor i = arange(3, DType::i64);
  EXPECT_THROW(i.set_requires_grad(), AutogradError);
}

TEST(Autograd, OnlyLeavesCanBeMarked) {
  Tensor x = f64_randn({3}, 9).set_requires_grad();
  Tensor y = exp(x);
  EXPECT_THROW(y.set_requires_grad(), AutogradError);
  EXPECT_NO_THROW(y.detach().set_requires_grad());
}

TEST(Autograd, ValueAndGradOverNamedParameters) {
  TensorDict params{{"w", f64_randn({3, 2}, 10)}, {"b", f64_randn({2}, 11)}, {"unused", f64_randn({4}, 12)}};
  Tensor xin = f64_randn({5, 3}, 13);
  auto loss_fn = [&](const TensorDict& p) {
    // Σ tanh(x·w + b) written with elementwise ops (matmul is tested elsewhere).
    Tensor xw = sum(mul(unsqueeze(xin, 2), unsqueeze(p["w"], 0)), {1});  // [5, 2]
    return sum(tanh(add(xw, p["b"])));
  };
  ValueAndGrad r = value_and_grad(loss_fn)(params);
  ASSERT_EQ(r.grads.size(), 3u);
  EXPECT_EQ(r.grads.items()[0].first, "w");
  EXPECT_FALSE(r.value.requires_grad());
  // Reference: d/db Σ tanh(z) = Σ_rows (1 − tanh²(z)).
  Tensor z;
  {
    NoGradGuard g;
    z = add(sum(mul(unsqueeze(xin, 2), unsqueeze(params["w"], 0)), {1}), params["b"]);
  }
  Tensor dz = 1.0 - square(tanh(z));
  EXPECT_TRUE(all_close(r.grads["b"], sum(dz, {0}), 1e-14));
  EXPECT_TRUE(all_close(r.grads["w"], sum(mul(unsqueeze(xin, 2), unsqueeze(dz, 1)), {0}), 1e-14));
  EXPECT_EQ(r.grads["unused"].to_vector<double>(), std::vector<double>(4, 0.0));
  EXPECT_NEAR(r.value.item(), sum(tanh(z)).item(), 1e-12);
  // The caller's parameters are untouched: no gradients stored on them.
  EXPECT_FALSE(params["w"].grad().defined());
  EXPECT_FALSE(params["w"].requires_grad());
}

TEST(Autograd, ValueAndGradRejectsNonScalarLoss) {
  TensorDict params{{"w", f64_randn({3}, 14)}};
  auto bad = value_and_grad([](const TensorDict& p) { return exp(p["w"]); });
  EXPECT_THROW(bad(params), ShapeError);
}

TEST(Autograd, CustomVjpUsesTheHandWrittenBackward) {
  Tensor x = f64_randn({4}, 15).set_requires_grad();
  int backward_calls = 0;
  // A "cube" primitive whose backward is written by hand.
  TensorList out = custom_vjp(
      "cube", {x}, [](const TensorList& in) { return TensorList{mul(in[0], mul(in[0], in[0]))}; },
      [&](const TensorList& in, const TensorList&, const TensorList& g) {
        ++backward_calls;
        return TensorList{mul(g[0], mul(square(in[0]), 3.0))};
      });
  EXPECT_EQ(out[0].impl()->grad_fn->name, "cube");
  sum(out[0]).backward();
  EXPECT_EQ(backward_calls, 1);
  EXPECT_TRUE(all_close(x.grad(), mul(square(x.detach()), 3.0), 1e-15));
}

TEST(Autograd, BackwardThroughAForwardOnlyPrimitiveIsAClearError) {
  Tensor x = f64_randn({4}, 16).set_requires_grad();
  TensorList out = custom_vjp(
      "round_to_int", {x}, [](const TensorList& in) { return TensorList{clone(in[0])}; }, nullptr);
  try {
    sum(out[0]).backward();
    FAIL() << "expected AutogradError";
  } catch (const AutogradError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("round_to_int"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no vjp"), std::string::npos) << msg;
  }
}

TEST(Autograd, CheckpointGivesTheSameGradientsAndRecomputes) {
  Tensor w = f64_randn({6}, 17).set_requires_grad();  // a parameter the block closes over
  Tensor x0 = f64_randn({6}, 18);
  int calls = 0;
  auto block = [&](const TensorList& in) {
    ++calls;
    return TensorList{tanh(mul(add(in[0], w), in[0]))};
  };
  // Reference without checkpoint.
  Tensor xa = x0.clone().set_requires_grad();
  sum(exp(block({xa})[0])).backward();
  Tensor gx_ref = xa.grad(), gw_ref = w.grad();
  w.zero_grad();
  calls = 0;

  Tensor xb = x0.clone().set_requires_grad();
  Tensor y = checkpoint(block, {xb})[0];
  EXPECT_EQ(calls, 1);
  sum(exp(y)).backward();
  EXPECT_EQ(calls, 2);  // recomputed once in backward
  EXPECT_TRUE(all_close(xb.grad(), gx_ref, 1e-14));
  EXPECT_TRUE(all_close(w.grad(), gw_ref, 1e-14));
}

TEST(Autograd, CheckpointRejectsHiddenTensorsWithHistory) {
  Tensor p = f64_randn({3}, 19).set_requires_grad();
  Tensor hidden = exp(p);  // has history, but is not passed as an input
  Tensor x = f64_randn({3}, 20).set_requires_grad();
  Tensor y = checkpoint([&](const TensorList& in) { return TensorList{mul(in[0], hidden)}; }, {x})[0];
  EXPECT_THROW(sum(y).backward(), AutogradError);
}

TEST(Autograd, DiamondGraphOrdersNodesCorrectly) {
  // y = e^{2x}·e^x = e^{3x}, built so the node for e^x feeds three consumers at two depths.
  Tensor x = f64_randn({5}, 21).set_requires_grad();
  Tensor a = exp(x);
  Tensor b = mul(a, a);
  Tensor y = sum(mul(b, a));
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), mul(exp(mul(x.detach(), 3.0)), 3.0), 1e-14));
}

TEST(Autograd, VeryDeepGraphsBackwardAndReleaseWithoutRecursion) {
  // A token-by-token recurrence makes chains this deep; neither backward nor releasing the
  // graph may recurse per node.
  Tensor x = f64_randn({2}, 23).set_requires_grad();
  {
    Tensor h = x;
    for (int i = 0; i < 200000; ++i) h = mul(h, 1.0);
    sum(h).backward();
  }
  EXPECT_TRUE(all_close(x.grad(), ones({2}, DType::f64), 0.0));
  Tensor h = x;
  for (int i = 0; i < 200000; ++i) h = add(h, 0.0);
  h = Tensor();  // the graph is released here, never backwarded
  SUCCEED();
}

TEST(Autograd, MultipleOutputsBackwardTogether) {
  Tensor x = f64_randn({4}, 22).set_requires_grad();
  Tensor y1 = sum(exp(x)), y2 = sum(mul(x, 2.0));
  backward({y1, y2});
  EXPECT_TRUE(all_close(x.grad(), add(exp(x.detach()), 2.0), 1e-15));
}

}  // namespace
}  // namespace lnx
