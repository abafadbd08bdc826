// Forward values of softmax, log_softmax, cross_entropy, l2_normalize and rms_norm against
// naive f64 loops written here; stability on extreme logits; ignored targets; errors; and
// results that must not depend on the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "numeric.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"

namespace lnx {
namespace {

// ---- naive references (f64, the last axis) ----

Tensor naive_softmax_last(const Tensor& x, bool log_form) {
  std::vector<double> v = x.contiguous().to_vector<double>();
  const int64_t C = x.shape().back(), N = x.numel() / C;
  std::vector<double> out(v.size());
  for (int64_t r = 0; r < N; ++r) {
    double m = -INFINITY;
    for (int64_t i = 0; i < C; ++i) m = std::max(m, v[r * C + i]);
    double s = 0;
    for (int64_t i = 0; i < C; ++i) s += std::exp(v[r * C + i] - m);
    for (int64_t i = 0; i < C; ++i)
      out[r * C + i] = log_form ? v[r * C + i] - m - std::log(s) : std::exp(v[r * C + i] - m) / s;
  }
  return from_vector<double>(out, x.shape());
}

// softmax / log_softmax along axis by the naive last-axis loop on a transposed copy.
Tensor naive_softmax(const Tensor& x, int64_t axis, bool log_form = false) {
  const int64_t ax = axis < 0 ? axis + x.dim() : axis;
  Tensor moved = transpose(x.to(DType::f64), ax, -1).contiguous();
  return transpose(naive_softmax_last(moved, log_form), ax, -1).contiguous();
}

double naive_cross_entropy(const Tensor& logits, const std::vector<int64_t>& targets, int64_t ignore_index) {
  std::vector<double> v = logits.contiguous().to_vector<double>();
  const int64_t C = logits.shape().back();
  double total = 0;
  int64_t count = 0;
  for (size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == ignore_index) continue;
    double m = -INFINITY;
    for (int64_t i = 0; i < C; ++i) m = std::max(m, v[r * C + i]);
    double s = 0;
    for (int64_t i = 0; i < C; ++i) s += std::exp(v[r * C + i] - m);
    total += m + std::log(s) - v[r * C + targets[r]];
    ++count;
  }
  return count ? total / static_cast<double>(count) : 0.0;
}

// d(mean loss)/d(logits) = (softmax − onehot)/count on counted rows.
Tensor naive_cross_entropy_grad(const Tensor& logits, const std::vector<int64_t>& targets, int64_t ignore_index) {
  Tensor p = naive_softmax_last(logits.to(DType::f64), false);
  std::vector<double> g = p.to_vector<double>();
  const int64_t C = logits.shape().back();
  int64_t count = 0;
  for (int64_t t : targets) count += t != ignore_index;
  for (size_t r = 0; r < targets.size(); ++r)
    for (int64_t i = 0; i < C; ++i) {
      double& e = g[r * C + i];
      if (targets[r] == ignore_index)
        e = 0;
      else
        e = (e - (i == targets[r] ? 1.0 : 0.0)) / static_cast<double>(count);
    }
  return from_vector<double>(g, logits.shape());
}

Tensor naive_rms_norm(const Tensor& x, const Tensor& w, double eps) {
  std::vector<double> v = x.contiguous().to_vector<double>();
  std::vector<double> wv = w.defined() ? w.to_vector<double>() : std::vector<double>();
  const int64_t D = x.shape().back(), N = x.numel() / D;
  std::vector<double> out(v.size());
  for (int64_t r = 0; r < N; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < D; ++i) ss += v[r * D + i] * v[r * D + i];
    const double rs = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
    for (int64_t i = 0; i < D; ++i) out[r * D + i] = v[r * D + i] * rs * (wv.empty() ? 1.0 : wv[i]);
  }
  return from_vector<double>(out, x.shape());
}

std::vector<int64_t> random_targets(int64_t n, int64_t C, Generator& g, int64_t ignore_every = 0) {
  std::vector<int64_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    t[i] = ignore_every && i % ignore_every == 1 ? -100 : static_cast<int64_t>(g.next_u64() % C);
  return t;
}

class ThreadCount {  // RAII: run a block with n threads
 public:
  explicit ThreadCount(int n) : prev_(num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(prev_); }

 private:
  int prev_;
};

// ---- softmax / log_softmax ----

TEST(NormalizationSoftmax, MatchesNaiveOnTheLastAxisF32) {
  Generator g(1);
  // Row lengths around the vector width, the exp buffer (256) and the lse block (1024).
  for (int64_t C : {1, 5, 16, 17, 129, 257, 1000, 3001}) {
    Tensor x = mul(randn({7, C}, g), 4.0);
    EXPECT_TRUE(all_close(softmax(x), naive_softmax(x, -1), 1e-6)) << "C=" << C;
    EXPECT_TRUE(all_close(log_softmax(x), naive_softmax(x, -1, true), 1e-6)) << "C=" << C;
    // Rows sum to one.
    EXPECT_TRUE(all_close(sum(softmax(x), {-1}), ones({7}, DType::f64), 1e-6)) << "C=" << C;
  }
}

TEST(NormalizationSoftmax, MatchesNaiveOnOtherAxesAndViews) {
  Generator g(2);
  Tensor x = mul(randn({4, 5, 6}, g), 3.0);
  for (int64_t ax : {0, 1, -2, 2}) {
    EXPECT_TRUE(all_close(softmax(x, ax), naive_softmax(x, ax), 1e-6)) << "axis " << ax;
    EXPECT_TRUE(all_close(log_softmax(x, ax), naive_softmax(x, ax, true), 1e-6)) << "axis " << ax;
    EXPECT_EQ(softmax(x, ax).shape(), x.shape());
  }
  Tensor xt = transpose(x, 0, 2);  // a non-contiguous input along the last axis
  EXPECT_TRUE(all_close(softmax(xt), naive_softmax(xt, -1), 1e-6));
}

TEST(NormalizationSoftmax, F64IsExactToRounding) {
  Generator g(3);
  Tensor x = mul(randn({9, 301}, g, DType::f64), 10.0);
  EXPECT_TRUE(all_close(softmax(x), naive_softmax(x, -1), 1e-14));
  EXPECT_TRUE(all_close(log_softmax(x), naive_softmax(x, -1, true), 1e-14));
}

TEST(NormalizationSoftmax, MaskedEntriesAndHugeLogits) {
  const double ninf = -std::numeric_limits<double>::infinity();
  Tensor x = from_list({1.0, ninf, 2.0, ninf, 1e4, -1e4, 3e4, 0.0}, {2, 4});
  Tensor y = softmax(x);
  EXPECT_EQ(y.at({0, 1}), 0.0);
  EXPECT_EQ(y.at({0, 3}), 0.0);
  EXPECT_NEAR(y.at({0, 0}), 1.0 / (1.0 + std::exp(1.0)), 1e-7);
  EXPECT_EQ(y.at({1, 2}), 1.0);
  EXPECT_EQ(y.at({1, 0}), 0.0);
  Tensor ly = log_softmax(x);
  EXPECT_EQ(ly.at({0, 1}), ninf);
  EXPECT_NEAR(ly.at({1, 0}), -2e4, 1e-2);
  EXPECT_EQ(ly.at({1, 2}), 0.0);
  // A NaN poisons its row only.
  Tensor xn = from_list({1.0, NAN, 2.0, 1.0, 2.0, 3.0}, {2, 3});
  EXPECT_TRUE(std::isnan(softmax(xn).at({0, 0})));
  EXPECT_TRUE(std::isnan(log_softmax(xn).at({0, 2})));
  EXPECT_FALSE(std::isnan(softmax(xn).at({1, 0})));
}

TEST(NormalizationSoftmax, LogSoftmaxWhenTheMaximumGrowsAcrossBlocks) {
  // Increasing values over several 1024-element blocks: the running sum is rescaled each time.
  Generator g(4);
  Tensor x = reshape(add(mul(arange(5000, DType::f32), 0.01), randn({5000}, g)), {1, 5000});
  EXPECT_TRUE(all_close(log_softmax(x), naive_softmax(x, -1, true), 1e-6));
  // Decreasing: the maximum is in the first block.
  Tensor xd = neg(x);
  EXPECT_TRUE(all_close(log_softmax(xd), naive_softmax(xd, -1, true), 1e-6));
}

TEST(NormalizationSoftmax, RejectsBadDtypesAndAxes) {
  EXPECT_THROW(softmax(arange(6, DType::i64)), DTypeError);
  EXPECT_THROW(log_softmax(arange(6, DType::i32)), DTypeError);
  EXPECT_THROW(softmax(ones({2, 3}), 2), ShapeError);
  EXPECT_THROW(log_softmax(ones({2, 3}), -3), ShapeError);
}

// ---- cross_entropy ----

TEST(NormalizationCrossEntropy, MatchesNaiveF32WithIgnoredTargets) {
  Generator g(5);
  Tensor logits = mul(randn({33, 1000}, g), 3.0);
  std::vector<int64_t> t = random_targets(33, 1000, g, 5);
  Tensor t64 = from_vector<int64_t>(t, {33});
  Tensor t32 = from_vector<int32_t>(std::vector<int32_t>(t.begin(), t.end()), {33});
  const double want = naive_cross_entropy(logits, t, -100);
  Tensor loss = cross_entropy(logits, t64);
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_EQ(loss.dtype(), DType::f32);
  EXPECT_NEAR(loss.item(), want, 1e-6 * std::abs(want));
  EXPECT_EQ(cross_entropy(logits, t32).item(), loss.item());
  // Leading dims are flattened into rows.
  EXPECT_EQ(cross_entropy(reshape(logits, {3, 11, 1000}), reshape(t64, {3, 11})).item(), loss.item());
}

TEST(NormalizationCrossEntropy, GradientIsSoftmaxMinusOneHotOverCount) {
  Generator g(6);
  Tensor logits = mul(randn({7, 300}, g), 2.0).set_requires_grad();
  std::vector<int64_t> t = random_targets(7, 300, g, 3);  // rows 1 and 4 ignored
  Tensor loss = cross_entropy(logits, from_vector<int64_t>(t, {7}));
  loss.backward();
  Tensor want = naive_cross_entropy_grad(logits.detach(), t, -100);
  EXPECT_TRUE(all_close(logits.grad(), want, 1e-6));
  for (int64_t i = 0; i < 300; ++i) ASSERT_EQ(logits.grad().at({1, i}), 0.0);
  // An upstream gradient scales it.
  logits.zero_grad();
  Tensor loss2 = mul(cross_entropy(logits, from_vector<int64_t>(t, {7})), 3.0);
  loss2.backward();
  EXPECT_TRUE(all_close(logits.grad(), mul(want, 3.0), 1e-6));
}

TEST(NormalizationCrossEntropy, StableOnHugeLogits) {
  Generator g(7);
  // ±1e4 logits: naive exp would overflow (f32 and f64 alike).
  Tensor sign = sub(mul(greater(uniform({16, 50}, 0, 1, g), full({}, 0.5)), 2.0), 1.0);
  Tensor logits = add(mul(sign, 1e4), randn({16, 50}, g)).set_requires_grad();
  std::vector<int64_t> t = random_targets(16, 50, g, 7);
  Tensor tt = from_vector<int64_t>(t, {16});
  Tensor loss = cross_entropy(logits, tt);
  ASSERT_TRUE(std::isfinite(loss.item()));
  const double want = naive_cross_entropy(logits.detach(), t, -100);
  EXPECT_GT(want, 100.0);  // some targets sit at −1e4 while the row max is +1e4
  EXPECT_NEAR(loss.item(), want, 1e-6 * want);
  loss.backward();
  for (double v : logits.grad().to_vector<double>()) ASSERT_TRUE(std::isfinite(v));
  EXPECT_TRUE(all_close(logits.grad(), naive_cross_entropy_grad(logits.detach(), t, -100), 1e-6));
  // The same through log_softmax: finite.
  for (double v : log_softmax(logits.detach()).to_vector<double>()) ASSERT_TRUE(std::isfinite(v));
}

TEST(NormalizationCrossEntropy, AllIgnoredGivesZeroAndZeroGradient) {
  Generator g(8);
  Tensor logits = randn({4, 6}, g).set_requires_grad();
  Tensor loss = cross_entropy(logits, full({4}, -100, DType::i64));
  EXPECT_EQ(loss.item(), 0.0);
  loss.backward();
  for (double v : logits.grad().to_vector<double>()) EXPECT_EQ(v, 0.0);
  // A custom ignore_index, and no rows at all.
  EXPECT_EQ(cross_entropy(logits.detach(), full({4}, 3, DType::i32), 3).item(), 0.0);
  EXPECT_EQ(cross_entropy(zeros({0, 6}), zeros({0}, DType::i64)).item(), 0.0);
}

TEST(NormalizationCrossEntropy, BadTargetValuesThrowValueErrorNamingThem) {
  Tensor logits = zeros({2, 3, 5});
  Tensor t = from_list({0, 1, 2, 3, 4, 7}, {2, 3}, DType::i64);
  std::string msg = error_of<ValueError>([&] { cross_entropy(logits, t); });
  EXPECT_NE(msg.find("[cross_entropy]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("target 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[1,2]"), std::string::npos) << msg;
  EXPECT_THROW(cross_entropy(logits, from_list({0, -1, 2, 3, 4, 1}, {2, 3}, DType::i32)), ValueError);
  EXPECT_THROW(cross_entropy(logits, from_list({0, 5, 2, 3, 4, 1}, {2, 3}, DType::i64)), ValueError);
  // ignore_index outside [0, C) is fine where it is the value; so is -100 by default.
  EXPECT_NO_THROW(cross_entropy(logits, from_list({0, 5, 2, 3, 4, 1}, {2, 3}, DType::i64), 5));
  EXPECT_NO_THROW(cross_entropy(logits, from_list({0, -100, 2, 3, 4, 1}, {2, 3}, DType::i64)));
}

TEST(NormalizationCrossEntropy, ShapeAndDtypeErrors) {
  Tensor logits = zeros({3, 5});
  std::string msg = error_of<ShapeError>([&] { cross_entropy(logits, zeros({4}, DType::i64)); });
  EXPECT_NE(msg.find("logits are [3,5] but targets are [4]"), std::string::npos) << msg;
  EXPECT_THROW(cross_entropy(logits, zeros({3, 1}, DType::i64)), ShapeError);
  EXPECT_THROW(cross_entropy(logits, zeros({}, DType::i64)), ShapeError);
  EXPECT_THROW(cross_entropy(zeros({}), zeros({}, DType::i64)), ShapeError);
  EXPECT_THROW(cross_entropy(logits, zeros({3})), DTypeError);  // float targets
  EXPECT_THROW(cross_entropy(zeros({3, 5}, DType::i64), zeros({3}, DType::i64)), DTypeError);
}

TEST(NormalizationCrossEntropy, SameResultForAnyThreadCount) {
  Generator g(9);
  Tensor logits = randn({301, 257}, g).set_requires_grad();
  Tensor t = from_vector<int64_t>(random_targets(301, 257, g, 4), {301});
  double one, many;
  Tensor g1;
  {
    ThreadCount tc(1);
    Tensor l = cross_entropy(logits, t);
    one = l.item();
    l.backward();
    g1 = logits.grad();
    logits.zero_grad();
  }
  Tensor l = cross_entropy(logits, t);
  many = l.item();
  l.backward();
  EXPECT_EQ(one, many);
  EXPECT_EQ(max_abs_error(g1, logits.grad()), 0.0);
}

// ---- l2_normalize ----

TEST(NormalizationL2Normalize, MatchesNaiveAndHasUnitNorm) {
  Generator g(10);
  Tensor x = randn({9, 33}, g);
  Tensor y = l2_normalize(x, -1, 0.0);
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  for (int64_t r = 0; r < 9; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < 33; ++i) ss += v[r * 33 + i] * v[r * 33 + i];
    for (int64_t i = 0; i < 33; ++i) out[r * 33 + i] = v[r * 33 + i] / std::sqrt(ss);
  }
  EXPECT_TRUE(all_close(y, from_vector<double>(out, {9, 33}), 1e-6));
  EXPECT_TRUE(all_close(sum(mul(y, y), {-1}), ones({9}), 1e-6));
  Tensor y0 = l2_normalize(x, 0, 0.0);
  EXPECT_TRUE(all_close(sum(mul(y0, y0), {0}), ones({33}), 1e-6));
  // eps keeps a zero row finite.
  for (double e : l2_normalize(zeros({2, 4})).to_vector<double>()) EXPECT_EQ(e, 0.0);
  EXPECT_THROW(l2_normalize(x, 2), ShapeError);
  EXPECT_THROW(l2_normalize(arange(3, DType::i64)), DTypeError);
}

// ---- rms_norm ----

TEST(NormalizationRmsNorm, MatchesNaiveF32) {
  Generator g(11);
  for (int64_t D : {1, 7, 65, 1024}) {
    Tensor x = mul(randn({200, D}, g), 3.0);
    Tensor w = randn({D}, g);
    EXPECT_TRUE(all_close(rms_norm(x, w, 1e-5), naive_rms_norm(x, w, 1e-5), 1e-6)) << D;
    EXPECT_TRUE(all_close(rms_norm(x, Tensor(), 1e-5), naive_rms_norm(x, Tensor(), 1e-5), 1e-6)) << D;
  }
  Tensor x3 = randn({2, 3, 9}, g);
  EXPECT_TRUE(
      all_close(rms_norm(transpose(x3, 0, 1), Tensor()), naive_rms_norm(transpose(x3, 0, 1), Tensor(), 1e-6), 1e-6));
}

TEST(NormalizationRmsNorm, FusedGradientsMatchTheComposite) {
  // 130 rows: more than the 64 blocks dweight's row sum is split into, with a partial last one.
  Generator g(12);
  Tensor x = randn({130, 7}, g, DType::f64).set_requires_grad();
  Tensor w = randn({7}, g, DType::f64).set_requires_grad();
  Tensor up = randn({130, 7}, g, DType::f64);
  sum(mul(rms_norm(x, w, 1e-3), up)).backward();
  Tensor dx = x.grad(), dw = w.grad();
  x.zero_grad();
  w.zero_grad();
  Tensor composite = mul(mul(x, rsqrt(add(mean(mul(x, x), {-1}, true), 1e-3))), w);
  sum(mul(composite, up)).backward();
  EXPECT_TRUE(all_close(dx, x.grad(), 1e-12));
  EXPECT_TRUE(all_close(dw, w.grad(), 1e-12));

  // f32 gradients against the f64 ones.
  Tensor xf = x.detach().to(DType::f32).set_requires_grad();
  Tensor wf = w.detach().to(DType::f32).set_requires_grad();
  sum(mul(rms_norm(xf, wf, 1e-3), up.to(DType::f32))).backward();
  EXPECT_TRUE(all_close(xf.grad(), dx, 1e-5));
  EXPECT_TRUE(all_close(wf.grad(), dw, 1e-5));
}

TEST(NormalizationRmsNorm, GradientOnlyWhereAsked) {
  Generator g(13);
  Tensor x = randn({5, 4}, g);
  Tensor w = randn({4}, g).set_requires_grad();
  sum(rms_norm(x, w)).backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_GT(max_abs_error(w.grad(), zeros({4})), 0.0);
  Tensor x2 = randn({5, 4}, g).set_requires_grad();
  sum(mul(rms_norm(x2, Tensor()), randn({5, 4}, g))).backward();
  EXPECT_EQ(x2.grad().shape(), (Shape{5, 4}));
}

TEST(NormalizationRmsNorm, DWeightSameForAnyThreadCount) {
  Generator g(14);
  Tensor x = randn({517, 33}, g).set_requires_grad();
  Tensor w = randn({33}, g).set_requires_grad();
  Tensor up = randn({517, 33}, g);
  Tensor dw1, dx1;
  {
    ThreadCount tc(1);
    sum(mul(rms_norm(x, w), up)).backward();
    dw1 = w.grad();
    dx1 = x.grad();
    w.zero_grad();
    x.zero_grad();
  }
  sum(mul(rms_norm(x, w), up)).backward();
  EXPECT_EQ(max_abs_error(dw1, w.grad()), 0.0);
  EXPECT_EQ(max_abs_error(dx1, x.grad()), 0.0);
}

TEST(NormalizationRmsNorm, Errors) {
  Tensor x = ones({3, 5});
  std::string msg = error_of<ShapeError>([&] { rms_norm(x, ones({4})); });
  EXPECT_NE(msg.find("[rms_norm] x is [3,5] but weight is [4]"), std::string::npos) << msg;
  EXPECT_THROW(rms_norm(x, ones({1, 5})), ShapeError);
  EXPECT_THROW(rms_norm(x, ones({5}, DType::f64)), DTypeError);
  EXPECT_THROW(rms_norm(ones({3, 5}, DType::i32), Tensor()), DTypeError);
  EXPECT_THROW(rms_norm(ones({}), Tensor()), ShapeError);
  EXPECT_THROW(rms_norm(x, Tensor(), -1.0), ValueError);
}

}  // namespace
}  // namespace lnx
