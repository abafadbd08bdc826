// mamba (Mamba-1 selective scan) beyond the registry-driven tests: strongly negative decays
// (large A and large Δ, so exp(Δ·A) is e^-10 … e^-160 per step and a chunk's decay is far
// below the float range), a mix of such channels with nearly undecayed ones, several lanes of
// channels (V > 32, not a multiple of the lane width), the D skip, dt_bias, and the f64 fast
// forms.
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
  return run_with_grads("mamba", form, inputs, dtype, opt, d_o, d_final);
}

// f64 inputs of the given sizes with the given dt and A_log.
TensorDict problem(const Tensor& dt, const Tensor& A_log, uint64_t seed) {
  const int64_t B = dt.size(0), T = dt.size(1), H = dt.size(2), V = dt.size(3), K = A_log.size(2);
  Generator gen(seed);
  TensorDict in;
  in.insert("x", randn({B, T, H, V}, gen, DType::f64));
  in.insert("dt", dt.to(DType::f64));
  in.insert("A_log", A_log.to(DType::f64));
  in.insert("dt_bias", mul(randn({H, V}, gen, DType::f64), 0.1));
  in.insert("B", randn({B, T, H, K}, gen, DType::f64));
  in.insert("C", randn({B, T, H, K}, gen, DType::f64));
  in.insert("D", randn({H, V}, gen, DType::f64));
  in.insert("initial_state", randn({B, H, K, V}, gen, DType::f64));
  return in;
}

// The fast forms against the f64 reference: outputs, final state, every input's gradient.
void check_against_reference(const TensorDict& in, uint64_t seed, const std::string& what, double out_tol = 1e-5,
                             double grad_tol = 1e-4, DType dtype = DType::f32) {
  const Tensor& x = in.at("x");
  const Tensor& h0 = in.at("initial_state");
  Generator gen(seed);
  Tensor d_o = randn(x.shape(), gen, DType::f64);
  Tensor d_final = randn(h0.shape(), gen, DType::f64);
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

TEST(Mamba, StronglyNegativeDecaysStayFiniteAndAccurate) {
  Generator gen(1);
  // A = −exp(A_log) from −7 to −55, Δ ≈ softplus(1 … 3): exp(Δ·A) from e^-9 to e^-170 per step.
  Tensor dt = uniform({2, 150, 2, 6}, 1.0, 3.0, gen, DType::f64);
  Tensor A_log = uniform({2, 6, 5}, 2.0, 4.0, gen, DType::f64);
  check_against_reference(problem(dt, A_log, 2), 3, "strongly negative");
}

TEST(Mamba, MixedDecaysAcrossChannelsAndLanes) {
  // Channels from nearly undecayed (A ≈ −e^-6) to strongly decayed, and V = 70: three lanes of
  // channels, the last one partial, sharing B and C.
  Generator gen(4);
  Tensor dt = uniform({1, 130, 2, 70}, -3.0, 3.0, gen, DType::f64);
  Tensor A_log = uniform({2, 70, 4}, -6.0, 4.0, gen, DType::f64);
  check_against_reference(problem(dt, A_log, 5), 6, "mixed, V=70");
}

TEST(Mamba, OneSharedGroupWithManyChannels) {
  // H = 1: B and C shared by every channel, as in Mamba-1 without groups.
  Generator gen(7);
  Tensor dt = sub(mul(randn({2, 97, 1, 40}, gen, DType::f64), 0.5), 1.0);
  Tensor A_log = log(uniform({1, 40, 16}, 1.0, 16.0, gen, DType::f64));
  check_against_reference(problem(dt, A_log, 8), 9, "H=1");
}

TEST(Mamba, FastFormsInF64MatchTheReferenceClosely) {
  Generator gen(10);
  Tensor dt = randn({2, 70, 2, 35}, gen, DType::f64);
  Tensor A_log = uniform({2, 35, 3}, -1.0, 3.0, gen, DType::f64);
  check_against_reference(problem(dt, A_log, 11), 12, "f64", 1e-12, 1e-10, DType::f64);
}

TensorDict without(const TensorDict& d, const std::string& name) {
  TensorDict out;
  for (const auto& [n, t] : d)
    if (n != name) out.insert(n, t);
  return out;
}

TensorDict to_dtype_f32(const TensorDict& d) {
  TensorDict out;
  for (const auto& [n, t] : d) out.insert(n, t.to(DType::f32));
  return out;
}

TEST(Mamba, DAddsTheSkipAndGetsItsGradient) {
  Generator gen(13);
  const TensorDict in =
      problem(randn({1, 50, 2, 5}, gen, DType::f64), uniform({2, 5, 4}, 0.0, 2.0, gen, DType::f64), 14);
  const TensorDict no_d = without(in, "D");
  const Tensor skip = mul(in.at("x"), reshape(in.at("D"), {1, 1, 2, 5}));
  Tensor d_o = randn({1, 50, 2, 5}, gen, DType::f64), d_final = randn({1, 2, 4, 5}, gen, DType::f64);
  for (Form form : kAllForms) {
    const DType dtype = form == Form::reference ? DType::f64 : DType::f32;
    Result with = run_grads(form, in, dtype, {}, d_o, d_final);
    Result wo = run_grads(form, no_d, dtype, {}, d_o, d_final);
    EXPECT_TRUE(all_close(sub(with.o.to(DType::f64), wo.o.to(DType::f64)), skip, 1e-6)) << form_name(form);
    EXPECT_TRUE(all_close(with.final_state, wo.final_state, 1e-7)) << form_name(form);
    // dD = Σ_{b,t} x ⊙ do.
    EXPECT_TRUE(all_close(with.grads.at("D").to(DType::f64), sum(mul(in.at("x"), d_o), {0, 1}), 1e-6))
        << form_name(form);
  }
}

TEST(Mamba, DtBiasIsAddedBeforeTheSoftplus) {
  Generator gen(15);
  const TensorDict in =
      problem(randn({2, 40, 2, 6}, gen, DType::f64), uniform({2, 6, 3}, 0.0, 2.0, gen, DType::f64), 16);
  TensorDict folded = without(without(in, "dt_bias"), "dt");
  folded.insert("dt", add(in.at("dt"), reshape(in.at("dt_bias"), {1, 1, 2, 6})));
  Tensor d_o = randn({2, 40, 2, 6}, gen, DType::f64), d_final = randn({2, 2, 3, 6}, gen, DType::f64);
  for (Form form : kAllForms) {
    // (f32 rounds dt + dt_bias differently from the f64 sum, hence the looser comparison.)
    const DType dtype = form == Form::reference ? DType::f64 : DType::f32;
    const double tol = form == Form::reference ? 1e-12 : 1e-5;
    Result a = run_grads(form, in, dtype, {}, d_o, d_final);
    Result b = run_grads(form, folded, dtype, {}, d_o, d_final);
    EXPECT_TRUE(all_close(a.o, b.o, tol)) << form_name(form);
    EXPECT_TRUE(all_close(a.final_state, b.final_state, tol)) << form_name(form);
    EXPECT_TRUE(all_close(a.grads.at("dt"), b.grads.at("dt"), tol)) << form_name(form);
    // d dt_bias = Σ_{b,t} d dt.
    EXPECT_TRUE(all_close(a.grads.at("dt_bias"), sum(a.grads.at("dt"), {0, 1}), 1e-6)) << form_name(form);
  }
}

TEST(Mamba, ParameterShapesAreCheckedByEveryForm) {
  Generator gen(17);
  const TensorDict in =
      to_dtype_f32(problem(randn({1, 5, 2, 3}, gen, DType::f64), uniform({2, 3, 4}, 0.0, 1.0, gen, DType::f64), 18));
  auto with = [&](const std::string& key, const Tensor& t) {
    TensorDict d = without(in, key);
    d.insert(key, t);
    return d;
  };
  for (Form form : kAllForms) {
    EXPECT_NO_THROW(run("mamba", form, in)) << form_name(form);
    EXPECT_THROW(run("mamba", form, with("A_log", zeros({2, 4, 3}))), ShapeError) << form_name(form);
    EXPECT_THROW(run("mamba", form, with("dt", zeros({1, 5, 2}))), ShapeError) << form_name(form);
    EXPECT_THROW(run("mamba", form, with("dt_bias", zeros({2}))), ShapeError) << form_name(form);
    EXPECT_THROW(run("mamba", form, with("D", zeros({2, 3}, DType::f64))), DTypeError) << form_name(form);
    EXPECT_THROW(run("mamba", form, without(in, "dt")), ValueError) << form_name(form);
  }
}

}  // namespace
}  // namespace lnx::kernels
