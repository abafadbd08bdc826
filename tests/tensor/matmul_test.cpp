// matmul forward values against a naive f64 triple loop: 2-d, batched (the batch-parallel,
// one-after-another and single-GEMM paths), broadcast batch dims, 1-d operands, transposed
// and strided views, zero-size dims; f32 gradients against f64; and the errors.
#include <gtest/gtest.h>

#include "numeric.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

// a [..., M, K] @ b [..., K, N] (both at least 2-d) in f64, batch dims broadcast.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  const int64_t M = a.shape()[a.dim() - 2], K = a.shape()[a.dim() - 1];
  const int64_t N = b.shape()[b.dim() - 1];
  Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                 Shape(b.shape().begin(), b.shape().end() - 2), "test");
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {M, K});
  sb.insert(sb.end(), {K, N});
  so.insert(so.end(), {M, N});
  std::vector<double> av = expand(a.to(DType::f64), sa).contiguous().to_vector<double>();
  std::vector<double> bv = expand(b.to(DType::f64), sb).contiguous().to_vector<double>();
  std::vector<double> out(static_cast<size_t>(numel_of(so)), 0.0);
  const int64_t nb = numel_of(batch);
  for (int64_t t = 0; t < nb; ++t)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += av[(t * M + i) * K + k] * bv[(t * K + k) * N + j];
        out[(t * M + i) * N + j] = s;
      }
  return from_vector<double>(out, so);
}

struct ShapePair {
  Shape a, b;
};

TEST(Matmul, MatchesNaiveOverBatchLayouts) {
  Generator g(1);
  const std::vector<ShapePair> cases = {
      {{3, 4}, {4, 5}},
      {{1, 7}, {7, 1}},
      {{2, 3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {5, 4, 2}},   // broadcast batch
      {{6, 3, 4}, {4, 5}},         // b shared: one GEMM over 18 rows
      {{6, 1, 4}, {1, 4, 5}},      // … with M = 1 and a size-1 batch dim on b
      {{3, 4}, {6, 4, 5}},         // a shared
      {{64, 8, 9}, {64, 9, 7}},    // small matrices: split over threads
      {{3, 70, 66}, {3, 66, 67}},  // large ones: one after another
      {{2, 3, 1, 5, 4}, {3, 2, 4, 3}},
  };
  for (const auto& c : cases) {
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor a = randn(c.a, g, dt), b = randn(c.b, g, dt);
      Tensor y = matmul(a, b);
      Tensor want = naive_matmul(a, b);
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_TRUE(all_close(y, want, dt == DType::f32 ? 1e-6 : 1e-13))
          << shape_str(c.a) << " @ " << shape_str(c.b) << " " << dtype_name(dt);
    }
  }
}

TEST(Matmul, LargeF32AgainstF64Naive) {
  Generator g(2);
  Tensor a = randn({257, 129}, g), b = randn({129, 65}, g);
  EXPECT_TRUE(all_close(matmul(a, b), naive_matmul(a, b), 1e-6));
}

TEST(Matmul, ViewsGiveTheSameAsContiguousCopies) {
  Generator g(3);
  Tensor a = randn({129, 257}, g), b = randn({65, 129}, g);
  Tensor at = transpose(a, 0, 1), bt = transpose(b, 0, 1);  // [257,129], [129,65]
  Tensor want = naive_matmul(at, bt);
  EXPECT_TRUE(all_close(matmul(at, bt), matmul(at.contiguous(), bt.contiguous()), 1e-6));
  EXPECT_TRUE(all_close(matmul(at, bt), want, 1e-6));
  EXPECT_TRUE(all_close(matmul(at, bt.contiguous()), want, 1e-6));
  EXPECT_TRUE(all_close(matmul(at.contiguous(), bt), want, 1e-6));

  // Batched transposes, permuted batch dims, row-major with a larger leading dim (column
  // slice), a stepped slice (must be copied), stride-0 batch dims, a single-column slice.
  Tensor x = randn({3, 5, 4}, g, DType::f64), y = randn({3, 5, 6}, g, DType::f64);
  Tensor xt = transpose(x, -1, -2);
  EXPECT_TRUE(all_close(matmul(xt, y), naive_matmul(xt, y), 1e-13));
  EXPECT_TRUE(all_close(matmul(transpose(y, -1, -2), x), naive_matmul(transpose(y, -1, -2), x), 1e-13));
  Tensor p = permute(randn({5, 3, 4}, g, DType::f64), {1, 0, 2});  // [3,5,4], batch stride 4
  Tensor q = randn({4, 6}, g, DType::f64);
  EXPECT_TRUE(all_close(matmul(p, q), naive_matmul(p, q), 1e-13));
  Tensor wide = randn({7, 12}, g, DType::f64);
  Tensor cols = slice(wide, 1, 2, 9);         // [7,7], row stride 12
  Tensor stepped = slice(wide, 1, 0, 12, 3);  // [7,4], column stride 3
  Tensor r = randn({7, 3}, g, DType::f64), r4 = randn({4, 3}, g, DType::f64);
  EXPECT_TRUE(all_close(matmul(cols, r), naive_matmul(cols, r), 1e-13));
  EXPECT_TRUE(all_close(matmul(stepped, r4), naive_matmul(stepped, r4), 1e-13));
  EXPECT_TRUE(all_close(matmul(transpose(cols, 0, 1), r), naive_matmul(transpose(cols, 0, 1), r), 1e-13));
  Tensor one_col = slice(wide, 1, 5, 6);  // [7,1] with row stride 12
  Tensor row = randn({1, 3}, g, DType::f64);
  EXPECT_TRUE(all_close(matmul(one_col, row), naive_matmul(one_col, row), 1e-13));
  Tensor ex = expand(randn({1, 5, 4}, g, DType::f64), {4, 5, 4});  // batch stride 0
  EXPECT_TRUE(all_close(matmul(ex, q), naive_matmul(ex, q), 1e-13));
  Tensor exb = expand(randn({4, 6}, g, DType::f64), {3, 4, 6});
  EXPECT_TRUE(all_close(matmul(x, exb), naive_matmul(x, exb), 1e-13));
  // A matrix whose own dims are broadcast (stride 0 inside the matrix) is copied.
  Tensor bc = expand(randn({1, 4}, g, DType::f64), {5, 4});
  EXPECT_TRUE(all_close(matmul(bc, q), naive_matmul(bc, q), 1e-13));
}

TEST(Matmul, OneDimOperandsArePromotedAndSqueezed) {
  Generator g(4);
  Tensor v4 = randn({4}, g, DType::f64), v4b = randn({4}, g, DType::f64);
  Tensor m43 = randn({4, 3}, g, DType::f64), m34 = randn({3, 4}, g, DType::f64);
  Tensor b243 = randn({2, 4, 3}, g, DType::f64), b234 = randn({2, 3, 4}, g, DType::f64);

  Tensor dot = matmul(v4, v4b);
  EXPECT_EQ(dot.shape(), Shape{});
  EXPECT_NEAR(dot.item(), sum(mul(v4, v4b)).item(), 1e-13);

  auto check = [](const Tensor& got, const Tensor& want_full, const Shape& shape) {
    EXPECT_EQ(got.shape(), shape);
    EXPECT_TRUE(all_close(got, reshape(want_full, shape), 1e-13)) << shape_str(shape);
  };
  check(matmul(v4, m43), naive_matmul(reshape(v4, {1, 4}), m43), {3});
  check(matmul(m34, v4), naive_matmul(m34, reshape(v4, {4, 1})), {3});
  check(matmul(b234, v4), naive_matmul(b234, reshape(v4, {4, 1})), {2, 3});
  check(matmul(v4, b243), naive_matmul(reshape(v4, {1, 4}), b243), {2, 3});
}

TEST(Matmul, ZeroSizeDims) {
  // K = 0: a sum over nothing, zeros.
  Tensor y = matmul(ones({3, 0}), ones({0, 4}));
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  for (double v : y.to_vector<double>()) EXPECT_EQ(v, 0.0);
  Tensor yb = matmul(ones({2, 3, 0}, DType::f64), ones({0, 4}, DType::f64));
  for (double v : yb.to_vector<double>()) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(matmul(ones({0, 3}), ones({3, 4})).shape(), (Shape{0, 4}));
  EXPECT_EQ(matmul(ones({2, 3}), ones({3, 0})).shape(), (Shape{2, 0}));
  EXPECT_EQ(matmul(ones({0, 2, 3}), ones({3, 5})).shape(), (Shape{0, 2, 5}));
  EXPECT_EQ(matmul(ones({0}), ones({0})).item(), 0.0);

  // Gradients through them have the operands' shapes (and are zero where they exist).
  Tensor a = ones({3, 0}).set_requires_grad(), b = ones({0, 4}).set_requires_grad();
  sum(matmul(a, b)).backward();
  EXPECT_EQ(a.grad().shape(), (Shape{3, 0}));
  EXPECT_EQ(b.grad().shape(), (Shape{0, 4}));
  Tensor a2 = ones({2, 0, 3}).set_requires_grad(), b2 = ones({3, 4}).set_requires_grad();
  sum(matmul(a2, b2)).backward();
  EXPECT_EQ(a2.grad().shape(), (Shape{2, 0, 3}));
  EXPECT_EQ(b2.grad().shape(), (Shape{3, 4}));
  for (double v : b2.grad().to_vector<double>()) EXPECT_EQ(v, 0.0);
}

TEST(Matmul, F32GradientsMatchF64) {
  Generator g(5);
  const std::vector<ShapePair> cases = {
      {{2, 1, 3, 4}, {5, 4, 2}}, {{4, 6, 5}, {5, 3}}, {{6, 5}, {4, 5, 3}}, {{5}, {3, 5, 2}}, {{33, 17}, {17}}};
  for (const auto& c : cases) {
    Tensor a64 = randn(c.a, g, DType::f64).set_requires_grad();
    Tensor b64 = randn(c.b, g, DType::f64).set_requires_grad();
    Tensor y64 = matmul(a64, b64);
    Tensor up = randn(y64.shape(), g, DType::f64);
    sum(mul(y64, up)).backward();
    Tensor a32 = a64.detach().to(DType::f32).set_requires_grad();
    Tensor b32 = b64.detach().to(DType::f32).set_requires_grad();
    sum(mul(matmul(a32, b32), up.to(DType::f32))).backward();
    EXPECT_TRUE(all_close(a32.grad(), a64.grad(), 1e-5)) << shape_str(c.a) << " @ " << shape_str(c.b);
    EXPECT_TRUE(all_close(b32.grad(), b64.grad(), 1e-5)) << shape_str(c.a) << " @ " << shape_str(c.b);
  }
}

TEST(Matmul, Errors) {
  std::string msg = error_of<ShapeError>([] { matmul(ones({2, 3}), ones({4, 5})); });
  EXPECT_NE(msg.find("[matmul] a is [2,3] but b is [4,5]"), std::string::npos) << msg;
  msg = error_of<ShapeError>([] { matmul(ones({2, 3, 4}), ones({3, 4, 5})); });
  EXPECT_NE(msg.find("[matmul] a is [2,3,4] but b is [3,4,5]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("batch"), std::string::npos) << msg;
  EXPECT_THROW(matmul(ones({3}), ones({4})), ShapeError);
  EXPECT_THROW(matmul(ones({3, 4}), ones({3})), ShapeError);
  EXPECT_THROW(matmul(ones({}), ones({3})), ShapeError);
  EXPECT_THROW(matmul(ones({2, 3}), ones({3, 2}, DType::f64)), DTypeError);
  EXPECT_THROW(matmul(ones({2, 3}, DType::i64), ones({3, 2}, DType::i64)), DTypeError);
  EXPECT_THROW(matmul(ones({2, 3}), Tensor()), ValueError);
}

}  // namespace
}  // namespace lnx

namespace lnx {
namespace {

TEST(MatmulThreads, ManySmallMatricesRunInParallelAndMatch) {
  // 3000 batches of small products take the batch-parallel path (BLAS called from inside a
  // parallel region).
  Generator g(21);
  Tensor a = randn({3000, 4, 5}, g, DType::f64), b = randn({3000, 5, 3}, g, DType::f64);
  Tensor c = matmul(a, b);
  Tensor ref = sum(mul(unsqueeze(a, 3), unsqueeze(b, 1)), {2});
  EXPECT_TRUE(all_close(c, ref, 1e-13));
  Tensor c32 = matmul(a.to(DType::f32), b.to(DType::f32));
  EXPECT_TRUE(all_close(c32, ref, 1e-6));
}

}  // namespace
}  // namespace lnx
