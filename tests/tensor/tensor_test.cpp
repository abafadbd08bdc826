// Tensor handles, views and aliasing, dtype rules, creation, random numbers, printing, and
// the error messages of shape mismatches.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "numeric.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

TEST(Tensor, ViewsShareStorageAndSeeWrites) {
  Tensor t = arange(12, DType::f32).reshape({3, 4});
  Tensor tr = t.transpose(0, 1);
  Tensor sl = slice(t, 1, 1, 3);
  Tensor ex = expand(slice(t, 0, 0, 1), {5, 4});
  for (const Tensor& v : {tr, sl, ex}) EXPECT_TRUE(v.shares_storage(t));
  t.set({1, 2}, 100.0);
  EXPECT_EQ(tr.at({2, 1}), 100.0);
  EXPECT_EQ(sl.at({1, 1}), 100.0);
  EXPECT_EQ(sl.shape(), (Shape{3, 2}));
  EXPECT_EQ(ex.strides()[0], 0);
  // reshape of a contiguous tensor is a view; of a transposed one it must copy.
  EXPECT_TRUE(reshape(t, {12}).shares_storage(t));
  EXPECT_FALSE(reshape(tr, {12}).shares_storage(t));
  EXPECT_EQ(reshape(tr, {12}).at({1}), 4.0);
  // A transposed-then-transposed view is contiguous again and contiguous() does not copy.
  EXPECT_TRUE(tr.transpose(0, 1).contiguous().shares_storage(t));
  EXPECT_FALSE(tr.contiguous().shares_storage(t));
  // clone always copies.
  EXPECT_FALSE(clone(t).shares_storage(t));
}

TEST(Tensor, ContiguousCopiesOfPermutedViewsAreExact) {
  // Covers the tiled transpose path (odd sizes, partial tiles, batched, dtype conversion).
  Generator g(5);
  for (const Shape& s : {Shape{37, 51}, Shape{3, 19, 8}, Shape{2, 5, 33, 17}, Shape{1, 1}}) {
    Tensor x = randn(s, g, DType::f64);
    std::vector<int64_t> order(s.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(order.size() - 1 - i);
    Tensor p = permute(x, order);
    Tensor c = p.contiguous(), c32 = p.to(DType::f32);
    std::vector<int64_t> idx(s.size(), 0);
    for (int64_t flat = 0; flat < c.numel(); ++flat) {
      int64_t rem = flat;
      for (int64_t d = c.dim() - 1; d >= 0; --d) idx[d] = rem % c.shape()[d], rem /= c.shape()[d];
      ASSERT_EQ(c.at(idx), p.at(idx));
      ASSERT_EQ(c32.at(idx), static_cast<float>(p.at(idx)));
    }
  }
}

TEST(Tensor, ReshapeViewsWhereStridesAllow) {
  // A slice of rows is viewable as a different number of rows with the same row length.
  Tensor t = arange(24, DType::f64).reshape({6, 4});
  Tensor rows = slice(t, 0, 2, 6);  // [4, 4], contiguous
  EXPECT_TRUE(reshape(rows, {2, 8}).shares_storage(t));
  Tensor cols = slice(t, 1, 0, 2);  // [6, 2] with row stride 4: splitting rows keeps a view
  Tensor split_rows = reshape(cols, {3, 2, 2});
  EXPECT_TRUE(split_rows.shares_storage(t));
  EXPECT_EQ(split_rows.at({1, 1, 1}), t.at({3, 1}));
}

TEST(Tensor, SelectSqueezeUnsqueeze) {
  Tensor t = arange(6, DType::i64).reshape({2, 3});
  EXPECT_EQ(select(t, 1, -1).to_vector<int64_t>(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(unsqueeze(t, -1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(squeeze(unsqueeze(t, 0), 0).shape(), (Shape{2, 3}));
  EXPECT_THROW(squeeze(t, 0), ShapeError);
}

TEST(Tensor, DTypeRules) {
  Tensor a = ones({2}, DType::f32), b = ones({2}, DType::f64);
  std::string msg = error_of<DTypeError>([&] { add(a, b); });
  EXPECT_NE(msg.find("[add]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f32"), std::string::npos) << msg;
  EXPECT_THROW(exp(arange(3, DType::i64)), DTypeError);
  // Integer arithmetic works and stays integer.
  Tensor i = add(arange(3, DType::i32), arange(3, DType::i32));
  EXPECT_EQ(i.dtype(), DType::i32);
  EXPECT_EQ(i.to_vector<int32_t>(), (std::vector<int32_t>{0, 2, 4}));
  // Scalars take the tensor's dtype.
  EXPECT_EQ(mul(a, 2.5).dtype(), DType::f32);
  EXPECT_EQ(to_dtype(from_list({1.7, -2.2}, {2}), DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2}));
  EXPECT_EQ(dtype_size(DType::f64), 8u);
}

TEST(Tensor, ShapeMismatchErrorsNameOpAndShapes) {
  Tensor a = ones({2, 3}), b = ones({4});
  std::string msg = error_of<ShapeError>([&] { mul(a, b); });
  EXPECT_NE(msg.find("[mul]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2,3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  EXPECT_THROW(reshape(a, {4, 2}), ShapeError);
  EXPECT_THROW(reshape(a, {-1, -1}), ShapeError);
  EXPECT_THROW(sum(a, {2}), ShapeError);
  EXPECT_THROW(sum(a, {0, 0}), ShapeError);
  EXPECT_THROW(permute(a, {0, 0}), ShapeError);
  EXPECT_THROW(expand(a, {2, 4}), ShapeError);
  EXPECT_THROW(a.at({0, 3}), ShapeError);
}

TEST(Tensor, BroadcastingValues) {
  Tensor a = arange(3, DType::f64).reshape({3, 1});
  Tensor b = mul(arange(4, DType::f64), 10.0);
  Tensor c = add(a, b);
  EXPECT_EQ(c.shape(), (Shape{3, 4}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(c.at({i, j}), i + 10.0 * j);
  // Broadcasting against a non-contiguous operand.
  Tensor t = arange(12, DType::f64).reshape({3, 4}).transpose(0, 1);  // [4, 3]
  Tensor d = sub(t, arange(3, DType::f64));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(d.at({i, j}), (j * 4 + i) - j);
}

TEST(Tensor, ReductionValues) {
  Generator g(3);
  Tensor x = randn({4, 5, 6}, g, DType::f64);
  // Naive sums in f64.
  auto v = x.to_vector<double>();
  double total = 0;
  for (double e : v) total += e;
  EXPECT_NEAR(sum(x).item(), total, 1e-12);
  Tensor s1 = sum(x, {1});
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t c = 0; c < 6; ++c) {
      double acc = 0;
      for (int64_t b = 0; b < 5; ++b) acc += x.at({a, b, c});
      EXPECT_NEAR(s1.at({a, c}), acc, 1e-12);
    }
  Tensor s02 = sum(x, {0, 2}, true);
  EXPECT_EQ(s02.shape(), (Shape{1, 5, 1}));
  Tensor mx = max(x, {-1});
  Tensor am = argmax(x, -1);
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t b = 0; b < 5; ++b) {
      double m = -INFINITY;
      int64_t mi = 0;
      for (int64_t c = 0; c < 6; ++c)
        if (x.at({a, b, c}) > m) m = x.at({a, b, c}), mi = c;
      EXPECT_EQ(mx.at({a, b}), m);
      EXPECT_EQ(am.at({a, b}), mi);
    }
  EXPECT_NEAR(mean(x).item(), total / 120.0, 1e-12);
  Tensor cs = cumsum(x, 1);
  EXPECT_NEAR(cs.at({2, 4, 3}), sum(slice(x, 1, 0, 5), {1}).at({2, 3}), 1e-12);
  Tensor lse = logsumexp(x, {-1});
  double ref = 0;
  for (int64_t c = 0; c < 6; ++c) ref += std::exp(x.at({1, 2, c}));
  EXPECT_NEAR(lse.at({1, 2}), std::log(ref), 1e-12);
}

TEST(Tensor, LargeSumIsAccurateAndUsesThreads) {
  // 4M f32 ones: the split-row path must add every element exactly once.
  Tensor x = ones({1 << 22}, DType::f32);
  EXPECT_EQ(sum(x).item(), static_cast<double>(1 << 22));
  Tensor y = ones({3, 1 << 20}, DType::f32);
  EXPECT_EQ(sum(y, {1}).to_vector<float>(), std::vector<float>(3, float(1 << 20)));
}

TEST(Tensor, SumOverManyLeadingRowsSplitsRowsOverThreads) {
  // [A, R, C] with few outputs and many rows takes the per-thread partial-row path.
  Generator g(8);
  for (const Shape& s : {Shape{4099, 37}, Shape{1, 3001, 11}, Shape{2, 3001, 11}}) {
    Tensor x = randn(s, g, DType::f64);
    const int64_t axis = s.size() == 2 ? 0 : 1;
    Tensor y = sum(x, {axis});
    Tensor ref = zeros(y.shape(), DType::f64);
    auto xv = x.to_vector<double>();
    const int64_t A = s.size() == 2 ? 1 : s[0], R = s[axis], C = s.back();
    std::vector<double> acc(A * C, 0.0);
    for (int64_t a = 0; a < A; ++a)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) acc[a * C + c] += xv[(a * R + r) * C + c];
    EXPECT_TRUE(all_close(y, from_vector<double>(acc, y.shape()), 1e-13));
  }
}

TEST(Tensor, LogsumexpOfMinusInfinityRows) {
  Tensor x = full({2, 3}, -INFINITY, DType::f64);
  x.set({1, 1}, 0.0);
  Tensor y = logsumexp(x, {-1});
  EXPECT_EQ(y.at({0}), -INFINITY);
  EXPECT_NEAR(y.at({1}), 0.0, 1e-15);
}

TEST(Tensor, MaxPropagatesNaN) {
  Tensor x = from_list({1.0, NAN, 3.0}, {3}, DType::f64);
  EXPECT_TRUE(std::isnan(max(x).item()));
}

TEST(Tensor, RandomIsSeededAndSane) {
  Generator g1(42), g2(42), g3(43);
  Tensor a = randn({1000}, g1, DType::f64), b = randn({1000}, g2, DType::f64), c = randn({1000}, g3, DType::f64);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
  EXPECT_NE(a.to_vector<double>(), c.to_vector<double>());
  EXPECT_NEAR(mean(a).item(), 0.0, 0.15);
  EXPECT_NEAR(mean(square(a)).item(), 1.0, 0.15);
  Tensor u = uniform({1000}, 2.0, 3.0, g1, DType::f32);
  EXPECT_GE(-max(neg(u)).item(), 2.0);
  EXPECT_LT(max(u).item(), 3.0);
  Tensor r = randint({1000}, -3, 4, g1);
  EXPECT_EQ(r.dtype(), DType::i64);
  EXPECT_LE(max(r).item(), 3);
  EXPECT_GE(-max(neg(r)).item(), -3);
}

TEST(Tensor, CreationHelpers) {
  EXPECT_EQ(full({2}, 3.5, DType::f64).to_vector<double>(), (std::vector<double>{3.5, 3.5}));
  EXPECT_EQ(arange(1.0, 2.0, 0.25, DType::f64).to_vector<double>(), (std::vector<double>{1.0, 1.25, 1.5, 1.75}));
  EXPECT_EQ(scalar_tensor(2.0).dim(), 0);
  EXPECT_EQ(scalar_tensor(2.0).item(), 2.0);
  EXPECT_THROW(Tensor::empty({2, -1}), ShapeError);
  EXPECT_THROW(from_vector<float>({1, 2, 3}, {2, 2}), ShapeError);
  Tensor z = zeros({0, 3});
  EXPECT_EQ(z.numel(), 0);
  EXPECT_EQ(sum(z, {0}).to_vector<float>(), std::vector<float>(3, 0.0f));
}

TEST(Tensor, Printing) {
  Tensor t = arange(4, DType::f32).reshape({2, 2});
  EXPECT_EQ(t.to_string(), "Tensor(f32[2,2], [[0, 1], [2, 3]])");
  Tensor x = ones({2}, DType::f64).set_requires_grad();
  EXPECT_NE(exp(x).to_string().find("grad_fn=exp"), std::string::npos);
  EXPECT_NE(arange(100).to_string().find("..."), std::string::npos);
}

TEST(Tensor, AllocatorReusesFreedBlocks) {
  size_t before = allocator_stats().bytes_in_use;
  { Tensor big = zeros({1 << 20}); }
  size_t cached = allocator_stats().bytes_cached;
  EXPECT_GE(cached, size_t(4) << 20);
  {
    Tensor again = zeros({1 << 20});
    EXPECT_LT(allocator_stats().bytes_cached, cached);
  }
  EXPECT_EQ(allocator_stats().bytes_in_use, before);
  reset_allocator_peak();
  EXPECT_EQ(allocator_stats().peak_bytes_in_use, allocator_stats().bytes_in_use);
  { Tensor big = zeros({1 << 20}); }
  EXPECT_GE(allocator_stats().peak_bytes_in_use, allocator_stats().bytes_in_use + (size_t(4) << 20));
}

TEST(Tensor, ThreadCountCanBeSet) {
  int n = num_threads();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  Tensor x = ones({1 << 20}, DType::f32);
  EXPECT_EQ(sum(x).item(), double(1 << 20));
  set_num_threads(n);
  EXPECT_THROW(set_num_threads(0), ValueError);
}

}  // namespace
}  // namespace lnx

namespace lnx {
namespace {

TEST(TensorErrors, OverflowingShapesAreRejected) {
  const int64_t big = int64_t(1) << 32;
  EXPECT_THROW(zeros({big, big}), ShapeError);
  EXPECT_THROW(zeros({big, big, 4}), ShapeError);
  EXPECT_THROW(Tensor::empty({int64_t(1) << 62, 4}, DType::f64), ShapeError);
  EXPECT_THROW(reshape(zeros({0}), {big, big}), ShapeError);
  EXPECT_THROW(arange(0.0, NAN, 1.0), ValueError);
  const int64_t huge = std::numeric_limits<int64_t>::max();
  EXPECT_THROW(split(zeros({0}), {huge, huge, 2}, 0), ValueError);
  EXPECT_THROW(pad(zeros({2}), {{huge, 1}}), ShapeError);
  EXPECT_THROW(one_hot(arange(3, DType::i64), int64_t(1) << 62), ShapeError);
}

TEST(TensorErrors, UndefinedTensorsGiveErrorsNotCrashes) {
  Tensor u;
  EXPECT_THROW(reshape(u, {1}), ValueError);
  EXPECT_THROW(transpose(u, 0, 1), ValueError);
  EXPECT_THROW(slice(u, 0, 0, 1), ValueError);
  EXPECT_THROW(expand(u, {2}), ValueError);
  EXPECT_THROW(contiguous(u), ValueError);
  EXPECT_THROW(u.to(DType::f64), ValueError);
  EXPECT_THROW(argmax(u, 0), ValueError);
  EXPECT_THROW(u.at({0}), ValueError);
  EXPECT_THROW(u.set_requires_grad(), ValueError);
  EXPECT_THROW(exp(u), ValueError);
  EXPECT_THROW(add(u, ones({1})), ValueError);
  EXPECT_THROW(custom_vjp(
                   "bad", {ones({1})}, [](const TensorList&) { return TensorList{Tensor()}; }, nullptr),
               AutogradError);
}

TEST(TensorErrors, IntegerDivisionIsRejectedNotTrapped) {
  EXPECT_THROW(div(arange(3, DType::i64), zeros({3}, DType::i64)), DTypeError);
}

TEST(TensorErrors, ExpandRejectsNegativeDims) {
  EXPECT_THROW(expand(ones({3}), {-2, 3}), ShapeError);
  EXPECT_THROW(expand(ones({1}), {-1}), ShapeError);
}

TEST(TensorAliasing, LeafGradientsOwnTheirStorage) {
  Tensor a = ones({3}, DType::f64).set_requires_grad(), b = ones({3}, DType::f64).set_requires_grad();
  Tensor g = full({3}, 2.0, DType::f64);
  add(a, b).backward(g);
  EXPECT_FALSE(a.grad().shares_storage(b.grad()));
  EXPECT_FALSE(a.grad().shares_storage(g));
  a.grad().set({0}, 100.0);
  EXPECT_EQ(b.grad().at({0}), 2.0);
  EXPECT_EQ(g.at({0}), 2.0);
}

TEST(TensorAliasing, IndexOpsKeepTheirOwnCopyOfIndices) {
  Tensor w = ones({5, 2}, DType::f64).set_requires_grad();
  Tensor ids = from_vector<int64_t>({1, 3, 1}, {3});
  Tensor y = embedding(w, ids);
  ids.set({0}, 1000000.0);  // a later write to the caller's buffer
  sum(y).backward();        // must use the ids seen in forward
  EXPECT_EQ(w.grad().at({1, 0}), 2.0);
  EXPECT_EQ(w.grad().at({3, 1}), 1.0);
}

}  // namespace
}  // namespace lnx
