// gla beyond the registry-driven tests: the chunk form (and the recurrent form) at extreme
// gates — strongly negative (g from −20 to −50 per step, where exp(P_i)·exp(−P_j) would
// overflow), exactly 0 (no decay), and both mixed in one problem — and the f64 fast forms.
#include <gtest/gtest.h>

#include <cmath>

#include "kernel_test_util.h"
#include "kernels/mechanism.h"
#include "numeric.h"

namespace lnx::kernels {
namespace {

using Result = GradRun;

Result run_grads(Form form, const TensorDict& inputs, DType dtype, const MechanismOptions& opt, const Tensor& d_o,
                 const Tensor& d_final) {
  return run_with_grads("gla", form, inputs, dtype, opt, d_o, d_final);
}

// Compares the fast forms against the f64 reference on inputs whose gates are `g`.
void check_against_reference(const Tensor& g, uint64_t seed, const std::string& what, double out_tol = 1e-5,
                             double grad_tol = 1e-4, DType dtype = DType::f32) {
  const int64_t B = g.size(0), T = g.size(1), H = g.size(2), K = g.size(3), V = 6;
  Generator gen(seed);
  TensorDict in;
  in.insert("q", randn({B, T, H, K}, gen, DType::f64));
  in.insert("k", randn({B, T, H, K}, gen, DType::f64));
  in.insert("v", randn({B, T, H, V}, gen, DType::f64));
  in.insert("g", g.to(DType::f64));
  in.insert("initial_state", randn({B, H, K, V}, gen, DType::f64));
  Tensor d_o = randn({B, T, H, V}, gen, DType::f64);
  Tensor d_final = randn({B, H, K, V}, gen, DType::f64);
  Result ref = run_grads(Form::reference, in, DType::f64, {}, d_o, d_final);
  for (Form form : {Form::recurrent, Form::chunk})
    for (int64_t chunk : {16, 64}) {
      if (form == Form::recurrent && chunk != 64) continue;
      MechanismOptions opt;
      opt.chunk_size = chunk;
      Result fast = run_grads(form, in, dtype, opt, d_o, d_final);
      const std::string tag = fmt::format("{} {} chunk={}", what, form_name(form), chunk);
      EXPECT_TRUE(all_finite(fast.o) && all_finite(fast.final_state)) << tag;
      EXPECT_TRUE(all_close(fast.o, ref.o, out_tol)) << tag << ": o";
      EXPECT_TRUE(all_close(fast.final_state, ref.final_state, out_tol)) << tag << ": final_state";
      for (const auto& [n, gref] : ref.grads) {
        EXPECT_TRUE(all_finite(fast.grads.at(n))) << tag << ": d" << n;
        EXPECT_TRUE(all_close(fast.grads.at(n), gref, grad_tol)) << tag << ": d" << n;
      }
    }
}

TEST(Gla, StronglyNegativeGatesStayFiniteAndAccurate) {
  Generator gen(1);
  // exp(g) from e^-20 to e^-50 per step: a 64-token chunk spans exponents down to −3200.
  Tensor g = uniform({2, 150, 2, 8}, -50.0, -20.0, gen, DType::f64);
  check_against_reference(g, 2, "g in [-50,-20]");
}

TEST(Gla, ZeroGatesMeanNoDecay) {
  Tensor g = zeros({2, 130, 2, 8}, DType::f64);
  check_against_reference(g, 3, "g = 0");
}

TEST(Gla, MixedExtremeGates) {
  // Per element either 0, nearly 0 or strongly negative, so one chunk holds exponents of every
  // size and small differences next to large prefix sums.
  Generator gen(4);
  Tensor u = uniform({1, 200, 3, 9}, 0.0, 1.0, gen, DType::f64);
  std::vector<double> uv = u.to_vector<double>(), gv(uv.size());
  for (size_t i = 0; i < uv.size(); ++i) gv[i] = uv[i] < 0.3 ? 0.0 : uv[i] < 0.6 ? -1e-3 * uv[i] : -20.0 - 30.0 * uv[i];
  check_against_reference(from_vector<double>(gv, u.shape()), 5, "mixed");
}

TEST(Gla, FastFormsInF64MatchTheReferenceClosely) {
  Generator gen(6);
  Tensor x = randn({2, 70, 2, 5}, gen, DType::f64);
  Tensor g = div(logsigmoid(x), 2.0);
  check_against_reference(g, 7, "f64", 1e-12, 1e-10, DType::f64);
}

TEST(Gla, GateInputIsCheckedByEveryForm) {
  Generator gen(8);
  TensorDict in;
  in.insert("q", randn({1, 5, 2, 4}, gen));
  in.insert("k", randn({1, 5, 2, 4}, gen));
  in.insert("v", randn({1, 5, 2, 3}, gen));
  for (Form form : kAllForms) {
    EXPECT_THROW(run("gla", form, in), ValueError) << form_name(form);  // g is required
    TensorDict scalar_gate = in;
    scalar_gate.insert("g", zeros({1, 5, 2}));  // simple_gla's shape, not gla's
    EXPECT_THROW(run("gla", form, scalar_gate), ShapeError) << form_name(form);
    TensorDict f64_gate = in;
    f64_gate.insert("g", zeros({1, 5, 2, 4}, DType::f64));
    EXPECT_THROW(run("gla", form, f64_gate), DTypeError) << form_name(form);
  }
}

}  // namespace
}  // namespace lnx::kernels
