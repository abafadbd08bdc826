#include "gradcheck.h"

#include <cmath>

namespace lnx {

::testing::AssertionResult check_gradients(const GradCase& c, uint64_t seed) {
  Generator gen(seed);
  TensorList inputs;
  if (c.make_inputs) {
    inputs = c.make_inputs(gen);
  } else {
    for (const auto& s : c.shapes) inputs.push_back(randn(s, gen, DType::f64));
  }
  for (auto& t : inputs) {
    t = t.contiguous().clone().detach();
    if (is_floating(t.dtype())) {
      if (t.dtype() != DType::f64)
        return ::testing::AssertionFailure() << c.name << ": gradient checks need f64 inputs";
      t.set_requires_grad(true);
    }
  }

  Tensor out = c.fn(inputs);
  if (!out.requires_grad()) return ::testing::AssertionFailure() << c.name << ": output does not require a gradient";
  Tensor w = randn(out.shape(), gen, out.dtype());
  Tensor loss = sum(mul(out, w));
  loss.backward();

  auto eval = [&]() {
    NoGradGuard no_grad;
    return sum(mul(c.fn(inputs), w)).item();
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!is_floating(x.dtype())) continue;
    Tensor g = x.grad();
    if (!g.defined()) g = zeros_like(x);
    double* xp = x.data<double>();
    auto gv = g.contiguous().to_vector<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double orig = xp[j];
      xp[j] = orig + c.eps;
      double fp = eval();
      xp[j] = orig - c.eps;
      double fm = eval();
      xp[j] = orig;
      double numeric = (fp - fm) / (2 * c.eps);
      double analytic = gv[j];
      if (!(std::abs(analytic - numeric) <= c.atol + c.rtol * std::abs(numeric)))
        return ::testing::AssertionFailure() << c.name << ": input " << i << " " << shape_str(x.shape()) << " element "
                                             << j << ": autodiff " << analytic << " vs finite differences " << numeric;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace lnx
