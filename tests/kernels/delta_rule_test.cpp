// delta_rule / gated_delta_rule / kda beyond the registry-driven tests: the in-kernel L2 norm
// of q and k (with gradients through it), strongly negative gates, g = 0 against the ungated
// rule, kda with equal gates over the key dimension against gated_delta_rule, and the fast
// forms in f64 against the reference at a tight tolerance (the chunk algebra is exact, so only
// rounding separates them).
#include <gtest/gtest.h>

#include <cmath>

#include "kernel_test_util.h"
#include "kernels/mechanism.h"
#include "numeric.h"

namespace lnx::kernels {
namespace {

using Result = GradRun;

TensorDict cast(const TensorDict& d, DType dtype) {
  TensorDict out;
  for (const auto& [name, t] : d) out.insert(name, is_floating(t.dtype()) ? t.to(dtype) : t);
  return out;
}

// L = Σ o ⊙ do + Σ final ⊙ dfinal with random do, dfinal drawn from seed, in the inputs' dtype.
Result run_grads(const std::string& name, Form form, const TensorDict& inputs, const MechanismOptions& opt,
                 uint64_t seed) {
  const Tensor& q = inputs.at("q");
  const Tensor& v = inputs.at("v");
  const int64_t N = opt.cu_seqlens.defined() ? opt.cu_seqlens.numel() - 1 : q.size(0);
  Generator gen(seed);
  Tensor d_o = randn(v.shape(), gen, DType::f64);
  Tensor d_f = randn({N, q.size(2), q.size(3), v.size(3)}, gen, DType::f64);
  return run_with_grads(name, form, inputs, inputs.at("q").dtype(), opt, d_o, d_f);
}

void expect_close(const Result& fast, const Result& ref, double out_tol, double grad_tol, const std::string& what) {
  EXPECT_TRUE(all_close(fast.o, ref.o, out_tol)) << what << ": o";
  EXPECT_TRUE(all_close(fast.final_state, ref.final_state, out_tol)) << what << ": final_state";
  for (const auto& [n, g] : ref.grads) {
    EXPECT_TRUE(all_close(fast.grads.at(n), g, grad_tol)) << what << ": d" << n;
    auto v = fast.grads.at(n).to_vector<double>();
    for (double x : v) ASSERT_TRUE(std::isfinite(x)) << what << ": d" << n << " not finite";
  }
}

TensorDict problem(const std::string& name, const ProblemSize& s, uint64_t seed) {
  Generator gen(seed);
  TensorDict d = mechanism(name).make_inputs(s, gen, DType::f64);
  d.insert("initial_state", randn({s.B, s.H, s.K, s.V}, gen, DType::f64));
  return d;
}

const char* kDeltaRules[] = {"delta_rule", "gated_delta_rule", "kda"};

TEST(DeltaRule, InKernelL2NormMatchesReferenceWithGradients) {
  for (const char* name : kDeltaRules) {
    ProblemSize s{2, 70, 2, 12, 5};
    TensorDict in = problem(name, s, 5);
    Generator gen(6);
    // Unnormalised q and k of various norms.
    in.set("q", mul(randn({s.B, s.T, s.H, s.K}, gen, DType::f64), 3.0));
    in.set("k", mul(randn({s.B, s.T, s.H, s.K}, gen, DType::f64), 0.5));
    MechanismOptions opt;
    opt.set("use_qk_l2norm", true);
    opt.chunk_size = 32;
    Result ref = run_grads(name, Form::reference, in, opt, 9);
    for (Form f : {Form::recurrent, Form::chunk}) {
      Result fast = run_grads(name, f, cast(in, DType::f32), opt, 9);
      expect_close(fast, ref, 1e-5, 1e-4, fmt::format("{} {} l2norm", name, form_name(f)));
    }
    // Without the option the unnormalised inputs give something else.
    Result plain = run_grads(name, Form::reference, in, {}, 9);
    EXPECT_GT(rel_rms_error(plain.o, ref.o), 1e-2);
  }
}

TEST(DeltaRule, FastFormsInF64MatchReferenceTightly) {
  for (const char* name : kDeltaRules) {
    ProblemSize s{1, 100, 2, 9, 7};
    TensorDict in = problem(name, s, 15);
    Result ref = run_grads(name, Form::reference, in, {}, 16);
    for (Form f : {Form::recurrent, Form::chunk}) {
      MechanismOptions opt;
      opt.chunk_size = 16;
      Result fast = run_grads(name, f, in, opt, 16);
      expect_close(fast, ref, 1e-11, 1e-10, fmt::format("{} {} f64", name, form_name(f)));
    }
  }
}

TEST(GatedDeltaRule, VeryNegativeGatesStayFiniteAndMatch) {
  for (const char* name : {"gated_delta_rule", "kda"}) {
    ProblemSize s{1, 150, 2, 8, 6};
    TensorDict in = problem(name, s, 25);
    Generator gen(26);
    in.set("g", uniform(in.at("g").shape(), -50.0, -20.0, gen, DType::f64));
    Result ref = run_grads(name, Form::reference, in, {}, 27);
    for (Form f : {Form::recurrent, Form::chunk}) {
      for (int64_t chunk : {16, 64}) {
        MechanismOptions opt;
        opt.chunk_size = chunk;
        Result fast = run_grads(name, f, cast(in, DType::f32), opt, 27);
        for (double x : fast.o.to_vector<double>()) ASSERT_TRUE(std::isfinite(x));
        expect_close(fast, ref, 1e-5, 1e-4,
                     fmt::format("{} very negative gates, {} chunk={}", name, form_name(f), chunk));
      }
    }
  }
}

TEST(Kda, EqualGatesOverKeysEqualGatedDeltaRule) {
  ProblemSize s{2, 45, 3, 6, 5};
  TensorDict in = problem("gated_delta_rule", s, 45);
  TensorDict per_key;
  for (const auto& [n, t] : in)
    per_key.insert(n, n == "g" ? expand(unsqueeze(t, 3), {s.B, s.T, s.H, s.K}).contiguous() : t);
  for (Form f : kAllForms) {
    MechanismOptions opt;
    opt.chunk_size = 16;
    Result a = run_grads("gated_delta_rule", f, in, opt, 46);
    Result b = run_grads("kda", f, per_key, opt, 46);
    EXPECT_TRUE(all_close(b.o, a.o, 1e-12)) << form_name(f);
    EXPECT_TRUE(all_close(b.final_state, a.final_state, 1e-12)) << form_name(f);
    for (const auto& [n, g] : a.grads) {
      Tensor gb = n == "g" ? sum(b.grads.at(n), {3}) : b.grads.at(n);  // dg sums over K
      EXPECT_TRUE(all_close(gb, g, 1e-10)) << form_name(f) << " d" << n;
    }
  }
}

TEST(GatedDeltaRule, ZeroGatesEqualDeltaRule) {
  ProblemSize s{2, 45, 3, 6, 5};
  TensorDict in = problem("delta_rule", s, 35);
  TensorDict gated = in;
  gated.insert("g", zeros({s.B, s.T, s.H}, DType::f64));
  for (Form f : kAllForms) {
    MechanismOptions opt;
    opt.chunk_size = 16;
    Result a = run_grads("delta_rule", f, in, opt, 36);
    Result b = run_grads("gated_delta_rule", f, gated, opt, 36);
    EXPECT_TRUE(all_close(b.o, a.o, 1e-12)) << form_name(f);
    EXPECT_TRUE(all_close(b.final_state, a.final_state, 1e-12)) << form_name(f);
    for (const auto& [n, g] : a.grads) EXPECT_TRUE(all_close(b.grads.at(n), g, 1e-12)) << form_name(f) << " d" << n;
  }
}

TEST(DeltaRule, RegistryListsTheOption) {
  for (const char* name : kDeltaRules) {
    const Mechanism& m = mechanism(name);
    ASSERT_EQ(m.options.fields.size(), 1u);
    EXPECT_EQ(m.options.fields[0].name, "use_qk_l2norm");
    ASSERT_TRUE(static_cast<bool>(m.flops));
    EXPECT_GT(m.flops({1, 64, 1, 16, 16}, Form::chunk, 64), m.flops({1, 64, 1, 16, 16}, Form::recurrent, 64));
  }
}

}  // namespace
}  // namespace lnx::kernels
