// mamba2 (SSD) equals simple_gla under the mapping of DESIGN.md §4: without the D skip,
// mamba2(x, dt, A_log, dt_bias, B, C) = simple_gla(q = C, k = B, v = Δ·x, g = Δ·A, scale = 1)
// with Δ = softplus(dt + dt_bias), A = −exp(A_log); with D, y gains D·x.
#include <gtest/gtest.h>

#include "kernels/mechanism.h"
#include "numeric.h"

namespace lnx::kernels {
namespace {

TensorDict without(const TensorDict& d, const std::string& name) {
  TensorDict out;
  for (const auto& [n, t] : d)
    if (n != name) out.insert(n, t);
  return out;
}

TensorDict to_f32(const TensorDict& d) {
  TensorDict out;
  for (const auto& [n, t] : d) out.insert(n, t.to(DType::f32));
  return out;
}

TensorDict simple_gla_inputs(const TensorDict& m) {
  Tensor delta = softplus(add(m.at("dt"), m.at("dt_bias")));
  TensorDict d;
  d.insert("q", m.at("C"));
  d.insert("k", m.at("B"));
  d.insert("v", mul(m.at("x"), unsqueeze(delta, 3)));
  d.insert("g", mul(delta, neg(exp(m.at("A_log")))));
  d.insert("initial_state", m.at("initial_state"));
  return d;
}

TEST(Mamba2, WithoutDEqualsSimpleGlaUnderTheMapping) {
  const Mechanism& m = mechanism("mamba2");
  ProblemSize s{2, 70, 3, 5, 4};
  Generator gen(9);
  TensorDict in = without(m.make_inputs(s, gen, DType::f64), "D");
  in.insert("initial_state", randn({2, 3, 5, 4}, gen, DType::f64));
  MechanismOptions scale1;
  scale1.scale = 1.0;
  const TensorDict mapped = simple_gla_inputs(in);
  // The definitions agree to rounding …
  MechanismOutputs a = run("mamba2", Form::reference, in);
  MechanismOutputs b = run("simple_gla", Form::reference, mapped, scale1);
  EXPECT_TRUE(all_close(a.o, b.o, 1e-12));
  EXPECT_TRUE(all_close(a.final_state, b.final_state, 1e-12));
  // … and so do the fast forms, in f32.
  for (Form f : {Form::recurrent, Form::chunk}) {
    MechanismOutputs fa = run("mamba2", f, to_f32(in));
    MechanismOutputs fb = run("simple_gla", f, to_f32(mapped), scale1);
    EXPECT_TRUE(all_close(fa.o, fb.o, 1e-6)) << form_name(f);
    EXPECT_TRUE(all_close(fa.final_state, fb.final_state, 1e-6)) << form_name(f);
    EXPECT_TRUE(all_close(fa.o, a.o, 1e-5)) << form_name(f);
  }
}

TEST(Mamba2, DAddsTheSkip) {
  const Mechanism& m = mechanism("mamba2");
  ProblemSize s{1, 20, 2, 3, 4};
  Generator gen(10);
  TensorDict in = m.make_inputs(s, gen, DType::f64);
  for (Form f : kAllForms) {
    Tensor with_d = run("mamba2", f, in).o;
    Tensor no_d = run("mamba2", f, without(in, "D")).o;
    Tensor skip = mul(in.at("x"), reshape(in.at("D"), {1, 1, 2, 1}));
    EXPECT_TRUE(all_close(with_d, add(no_d, skip), 1e-12)) << form_name(f);
  }
}

TEST(Mamba2, BadInputsNameTheTensor) {
  const Mechanism& m = mechanism("mamba2");
  ProblemSize s{1, 8, 2, 3, 4};
  Generator gen(11);
  TensorDict in = m.make_inputs(s, gen, DType::f32);
  TensorDict bad = without(in, "dt");
  bad.insert("dt", zeros({1, 8, 3}));
  try {
    run("mamba2", Form::chunk, bad);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("dt"), std::string::npos) << e.what();
  }
  bad = without(in, "A_log");
  bad.insert("A_log", zeros({2}, DType::f64));
  EXPECT_THROW(run("mamba2", Form::recurrent, bad), DTypeError);
}

}  // namespace
}  // namespace lnx::kernels
