// linear_group: several Linears of one input, as one streamed pass when their weights are
// packed, and the same as each Linear's own forward either way (differentiable in f32).
#include <gtest/gtest.h>

#include "modules/linear.h"
#include "numeric.h"
#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace lnx::modules {
namespace {

TEST(LinearGroup, EqualsEachForwardPackedOrNot) {
  Generator gen(1);
  Linear a(70, 33, false, gen, 0.5), b(70, 1, true, gen, 0.5), c(70, 129, false, gen, 0.5);
  const Tensor x = randn({2, 3, 70}, gen);
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8}) {
    for (Linear* l : {&a, &b, &c}) l->pack_weight(f);
    NoGradGuard no_grad;
    const TensorList ys = linear_group(x, {&a, &b, &c});
    ASSERT_EQ(ys.size(), 3u);
    const Linear* ls[] = {&a, &b, &c};
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_EQ(ys[j].shape(), (Shape{2, 3, ls[j]->out_features()}));
      EXPECT_LT(rel_rms_error(ys[j], ls[j]->forward(x)), 1e-6) << weight_format_name(f) << " " << j;
    }
  }
}

TEST(LinearGroup, F32WeightsKeepTheirGradients) {
  Generator gen(2);
  Linear a(8, 5, true, gen, 0.5), b(8, 3, false, gen, 0.5);
  const Tensor x = randn({4, 8}, gen);
  x.set_requires_grad();
  const TensorList ys = linear_group(x, {&a, &b});
  add(sum(ys[0]), sum(mul(ys[1], ys[1]))).backward();
  ASSERT_TRUE(a.weight.grad().defined() && b.weight.grad().defined() && x.grad().defined());
  // d/dW of Σ (x Wᵀ + bias) is the column sums of x for every row of W.
  const Tensor col = sum(x.detach(), {0});
  for (int64_t o = 0; o < 5; ++o) EXPECT_LT(rel_rms_error(select(a.weight.grad(), 0, o), col), 1e-6);
}

TEST(LinearGroup, PackedWeightsRefuseARecordingForward) {
  Generator gen(3);
  Linear a(8, 5, false, gen), b(8, 3, false, gen);
  a.pack_weight(WeightFormat::int8);
  b.pack_weight(WeightFormat::int8);
  EXPECT_THROW(linear_group(randn({2, 8}, gen), {&a, &b}), AutogradError);  // the weights require grad
  NoGradGuard no_grad;
  EXPECT_THROW(linear_group(randn({2, 7}, gen), {&a, &b}), ShapeError);
}

}  // namespace
}  // namespace lnx::modules
