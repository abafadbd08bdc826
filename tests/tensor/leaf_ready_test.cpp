// backward's on_leaf_ready: each leaf is reported once, when its gradient is final, before the
// backward ends; and no leaf is reported when a checkpoint (a nested backward) is in the graph.
#include <gtest/gtest.h>

#include <map>

#include "tensor/autograd.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

TEST(LeafReady, EachLeafIsReportedOnceWithItsFinalGradient) {
  Generator gen(1);
  Tensor w1 = randn({4, 4}, gen), w2 = randn({4, 4}, gen), unused = randn({3}, gen);
  for (Tensor* w : {&w1, &w2, &unused}) w->set_requires_grad(true);
  const Tensor x = randn({2, 4}, gen);
  // w1 is used twice (first and last layer): it is final only when both uses have run.
  const Tensor h = tanh(matmul(x, w1));
  const Tensor y = sum(matmul(tanh(matmul(h, w2)), w1));
  std::map<const TensorImpl*, Tensor> seen;
  std::vector<const TensorImpl*> order;
  backward({y}, {}, false, [&](const TensorImpl* leaf) {
    EXPECT_EQ(seen.count(leaf), 0u) << "reported twice";
    order.push_back(leaf);
    const Tensor& w = leaf == w1.impl() ? w1 : w2;
    seen[leaf] = clone(w.grad());  // the gradient at the time of the report
  });
  ASSERT_EQ(seen.size(), 2u);           // `unused` has no path: not reported
  EXPECT_EQ(order.front(), w2.impl());  // w2's only use is reached before w1's first
  for (const Tensor* w : {&w1, &w2})
    EXPECT_EQ(seen[w->impl()].to_vector<float>(), w->grad().to_vector<float>()) << "reported before it was final";
}

TEST(LeafReady, NothingIsReportedThroughACheckpoint) {
  Generator gen(2);
  Tensor w = randn({4, 4}, gen), v = randn({4, 4}, gen);
  w.set_requires_grad(true);
  v.set_requires_grad(true);
  const Tensor x = randn({2, 4}, gen);
  // The block closes over w: the outer graph has no edge to it, so "final" cannot be known.
  const Tensor h = checkpoint([&](const TensorList& in) { return TensorList{tanh(matmul(in[0], w))}; }, {x})[0];
  const Tensor y = sum(matmul(h, v));
  int reports = 0;
  backward({y}, {}, false, [&](const TensorImpl*) { ++reports; });
  EXPECT_EQ(reports, 0);
  EXPECT_TRUE(w.grad().defined());
  EXPECT_TRUE(v.grad().defined());
}

}  // namespace
}  // namespace lnx
