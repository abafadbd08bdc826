#include <gtest/gtest.h>

#include "numeric.h"
#include "tensor/ops.h"

using namespace lnx;

TEST(TensorBasics, CreationAndAccess) {
  Tensor t = arange(6, DType::f32).reshape({2, 3});
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.at({1, 2}), 5.0);
  Tensor tt = t.transpose(0, 1);
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_TRUE(tt.shares_storage(t));
  EXPECT_EQ(tt.at({2, 1}), 5.0);
  EXPECT_EQ(tt.contiguous().to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(TensorBasics, SimpleBackward) {
  Generator g(1);
  Tensor x = randn({3, 4}, g, DType::f64).set_requires_grad();
  Tensor y = sum(mul(exp(x), x));
  y.backward();
  // d/dx Σ x eˣ = eˣ (1 + x)
  Tensor expect = mul(exp(x.detach()), add(x.detach(), 1.0));
  EXPECT_TRUE(all_close(x.grad(), expect, 1e-14));
}
