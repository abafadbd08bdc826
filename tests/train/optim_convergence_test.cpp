// Each optimizer trains a small softmax classifier (linear map + bias on separable Gaussian
// data, built with the tensor ops and autodiff) below a loss threshold in a fixed number of
// steps; Sophia gets its Gauss–Newton–Bartlett estimates from labels sampled from the model.
// Newton–Schulz: an independent naive implementation agrees, transposition commutes with it,
// and its output's singular values lie in the expected band.
#include <gtest/gtest.h>

#include <cmath>

#include "numeric.h"
#include "optim_test_util.h"
#include "train/optim.h"
#include "train/schedule.h"

namespace lnx::train {
namespace {

using namespace lnx::train::testing;

// N samples, D features, K classes; labels = argmax of a hidden linear map.
struct ClassificationTask {
  static constexpr int64_t N = 128, D = 8, K = 4;
  Tensor x, labels;
  explicit ClassificationTask(uint64_t seed) {
    Generator gen(seed);
    x = randn({N, D}, gen, DType::f64);
    const Tensor truth = randn({D, K}, gen, DType::f64) * 3.0;
    labels = argmax(matmul(x, truth), 1);
  }
  Tensor logits(const TensorDict& p) const {
    return matmul(x, transpose(p.at("blocks.0.proj.weight"), 0, 1)) + p.at("blocks.0.proj.bias");
  }
  Tensor loss(const TensorDict& p) const { return cross_entropy(logits(p), labels); }
};

// Labels drawn from the model's own softmax (Sophia-G's estimator), seeded.
Tensor sample_labels(const Tensor& logits, Generator& gen) {
  NoGradGuard no_grad;
  const std::vector<double> probs = softmax(logits.detach(), 1).to_vector<double>();
  const int64_t n = logits.size(0), k = logits.size(1);
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    double u = gen.uniform(), acc = 0;
    out[i] = k - 1;
    for (int64_t j = 0; j < k; ++j) {
      acc += probs[i * k + j];
      if (u < acc) {
        out[i] = j;
        break;
      }
    }
  }
  return from_vector<int64_t>(out, {n});
}

struct ConvergenceCase {
  std::string name;
  double lr;
  int64_t steps;
};

class Convergence : public ::testing::TestWithParam<ConvergenceCase> {};

TEST_P(Convergence, ClassifierLossFalls) {
  const auto& [name, lr, steps] = GetParam();
  const ClassificationTask task(21);
  Generator init(4);
  TensorDict params{{"blocks.0.proj.weight", (randn({task.K, task.D}, init, DType::f64) * 0.1).set_requires_grad()},
                    {"blocks.0.proj.bias", zeros({task.K}, DType::f64).set_requires_grad()}};
  OptimizerConfig c = config_named(name);
  c.lr = lr;
  c.muon_lr = lr;
  c.weight_decay = 0.0;
  c.hessian_interval = 5;
  auto opt = make_optimizer(c, params);
  const ScheduleConfig schedule{"cosine", 10, steps, 0.05};
  Generator sampler(99);
  const double initial = task.loss(params).item();
  EXPECT_NEAR(initial, std::log(4.0), 0.5);
  for (int64_t s = 0; s < steps; ++s) {
    if (opt->wants_hessian(s)) {
      const Tensor sampled = sample_labels(task.logits(params), sampler);
      auto sampled_grads = value_and_grad([&](const TensorDict& p) { return cross_entropy(task.logits(p), sampled); });
      opt->update_hessian(sampled_grads(params).grads, ClassificationTask::N);
    }
    for (const auto& [pname, p] : params) p.zero_grad();
    task.loss(params).backward();
    opt->step(lr_scale(schedule, s));
  }
  const double final_loss = task.loss(params).item();
  EXPECT_LT(final_loss, 0.15) << name << ": initial " << initial << ", final " << final_loss;
}

INSTANTIATE_TEST_SUITE_P(All, Convergence,
                         ::testing::Values(ConvergenceCase{"adamw", 0.1, 200}, ConvergenceCase{"muon", 0.1, 200},
                                           ConvergenceCase{"sophia", 0.05, 200}, ConvergenceCase{"sgd", 0.5, 200}),
                         [](const auto& info) { return info.param.name; });

// The iteration written out with loops, in double.
std::vector<double> naive_newton_schulz(std::vector<double> g, int64_t rows, int64_t cols, int steps) {
  auto mul = [](const std::vector<double>& a, const std::vector<double>& b, int64_t n, int64_t k, int64_t m) {
    std::vector<double> c(n * m, 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j)
        for (int64_t l = 0; l < k; ++l) c[i * m + j] += a[i * k + l] * b[l * m + j];
    return c;
  };
  auto transposed = [](const std::vector<double>& a, int64_t n, int64_t m) {
    std::vector<double> t(n * m);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) t[j * n + i] = a[i * m + j];
    return t;
  };
  double norm = 0;
  for (double v : g) norm += v * v;
  norm = std::sqrt(norm);
  for (double& v : g) v /= norm + 1e-7;
  // rows ≤ cols here (the caller passes a wide matrix).
  for (int s = 0; s < steps; ++s) {
    const auto gram = mul(g, transposed(g, rows, cols), rows, cols, rows);
    const auto gram2 = mul(gram, gram, rows, rows, rows);
    std::vector<double> poly(rows * rows);
    for (size_t i = 0; i < poly.size(); ++i) poly[i] = -4.7750 * gram[i] + 2.0315 * gram2[i];
    const auto px = mul(poly, g, rows, rows, cols);
    for (size_t i = 0; i < g.size(); ++i) g[i] = 3.4445 * g[i] + px[i];
  }
  return g;
}

TEST(NewtonSchulz, MatchesNaiveLoopsAndCommutesWithTranspose) {
  Generator gen(17);
  const Tensor g = randn({5, 7}, gen, DType::f64);
  const Tensor wide = newton_schulz(g, 5);
  const Tensor expected = tensor_of(naive_newton_schulz(values(g), 5, 7, 5), {5, 7}, DType::f64);
  EXPECT_TRUE(all_close(wide, expected, 1e-12));
  const Tensor tall = newton_schulz(contiguous(transpose(g, 0, 1)), 5);
  EXPECT_TRUE(all_close(tall, contiguous(transpose(wide, 0, 1)), 1e-12));
  EXPECT_THROW(newton_schulz(zeros({3}), 5), ShapeError);
  // Zero in, zero out (the 1e-7 keeps the normalisation finite).
  for (double v : values(newton_schulz(zeros({3, 4}, DType::f64), 5))) EXPECT_EQ(v, 0.0);
}

// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations.
std::vector<double> symmetric_eigenvalues(std::vector<double> a, int64_t n) {
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off < 1e-26) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        if (std::abs(a[p * n + q]) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double cs = 1 / std::sqrt(t * t + 1), sn = t * cs;
        for (int64_t k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = cs * akp - sn * akq;
          a[k * n + q] = sn * akp + cs * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = cs * apk - sn * aqk;
          a[q * n + k] = sn * apk + cs * aqk;
        }
      }
  }
  std::vector<double> eig(n);
  for (int64_t i = 0; i < n; ++i) eig[i] = a[i * n + i];
  return eig;
}

class NewtonSchulzBand : public ::testing::TestWithParam<DType> {};

TEST_P(NewtonSchulzBand, SingularValuesNearOne) {
  Generator gen(23);
  for (const Shape& shape : {Shape{16, 48}, Shape{48, 16}, Shape{24, 32}}) {
    const Tensor g = randn(shape, gen, GetParam());
    const Tensor o = newton_schulz(g, 5).to(DType::f64);
    const int64_t small = std::min(shape[0], shape[1]);
    // The small Gram matrix's eigenvalues are the squared singular values.
    const Tensor gram = shape[0] <= shape[1] ? matmul(o, transpose(o, 0, 1)) : matmul(transpose(o, 0, 1), o);
    const std::vector<double> eig = symmetric_eigenvalues(values(gram), small);
    double lo = INFINITY, hi = 0;
    for (double e : eig) {
      lo = std::min(lo, std::sqrt(std::max(e, 0.0)));
      hi = std::max(hi, std::sqrt(std::max(e, 0.0)));
    }
    EXPECT_GT(lo, 0.65) << shape_str(shape);
    EXPECT_LT(hi, 1.2) << shape_str(shape);
    EXPECT_EQ(o.shape(), shape);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, NewtonSchulzBand, ::testing::Values(DType::f64, DType::f32));

}  // namespace
}  // namespace lnx::train
