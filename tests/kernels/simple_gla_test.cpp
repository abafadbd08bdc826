// simple_gla with a fixed per-head decay g_gamma as an input (alone and with g): the
// registry-driven tests give simple_gla only g and retention a constant g_gamma, so the
// gradient of g_gamma is checked here. Also: the chunk form stays finite and accurate for
// very negative gates, and both of its schedules (one pass per (sequence, head) when there
// are at least as many pairs as threads; chunk-parallel phases otherwise) agree with the
// reference, for one sequence and for packed ones.
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/common/gates.h"
#include "kernels/mechanism.h"
#include "numeric.h"
#include "tensor/cpu/parallel.h"

namespace lnx::kernels {
namespace {

using Result = GradRun;

Result run_grads(Form form, const TensorDict& inputs, DType dtype, const Tensor& d_o, const Tensor& d_final,
                 const MechanismOptions& opt = {}) {
  return run_with_grads("simple_gla", form, inputs, dtype, opt, d_o, d_final);
}

void check_against_reference(const TensorDict& in, const ProblemSize& s, const MechanismOptions& opt = {}) {
  Generator gen(99);
  Tensor d_o = randn({s.B, s.T, s.H, s.V}, gen, DType::f64);
  Tensor d_final = randn({s.B, s.H, s.K, s.V}, gen, DType::f64);
  Result ref = run_grads(Form::reference, in, DType::f64, d_o, d_final, opt);
  for (Form f : {Form::recurrent, Form::chunk}) {
    Result fast = run_grads(f, in, DType::f32, d_o, d_final, opt);
    EXPECT_TRUE(all_close(fast.o, ref.o, 1e-5)) << form_name(f) << ": o";
    EXPECT_TRUE(all_close(fast.final_state, ref.final_state, 1e-5)) << form_name(f) << ": final_state";
    for (const auto& [n, g] : ref.grads)
      EXPECT_TRUE(all_close(fast.grads.at(n), g, 1e-4)) << form_name(f) << ": d" << n;
  }
}

TensorDict problem(const ProblemSize& s, bool with_g, uint64_t seed) {
  Generator gen(seed);
  TensorDict d;
  d.insert("q", randn({s.B, s.T, s.H, s.K}, gen, DType::f64));
  d.insert("k", randn({s.B, s.T, s.H, s.K}, gen, DType::f64));
  d.insert("v", randn({s.B, s.T, s.H, s.V}, gen, DType::f64));
  if (with_g) d.insert("g", random_log_gates({s.B, s.T, s.H}, gen, DType::f64));
  d.insert("g_gamma", random_log_gates({s.H}, gen, DType::f64));
  d.insert("initial_state", randn({s.B, s.H, s.K, s.V}, gen, DType::f64));
  return d;
}

TEST(SimpleGla, GGammaAloneAndWithG) {
  ProblemSize s{2, 90, 3, 6, 5};
  check_against_reference(problem(s, false, 1), s);
  check_against_reference(problem(s, true, 2), s);
}

TEST(SimpleGla, VeryNegativeGatesStayFiniteAndAccurate) {
  ProblemSize s{1, 130, 2, 4, 3};
  TensorDict in;
  for (const auto& [n, t] : problem(s, true, 3))
    in.insert(n, n == "g" ? mul(t, 40.0) : t);  // down to about −10³ per token
  MechanismOptions opt;
  opt.chunk_size = 128;
  check_against_reference(in, s, opt);
}

// Runs f with the thread count set to n, restoring the previous count afterwards.
template <typename F> void with_threads(int n, F&& f) {
  const int before = num_threads();
  set_num_threads(n);
  try {
    f();
  } catch (...) {
    set_num_threads(before);
    throw;
  }
  set_num_threads(before);
}

TEST(SimpleGla, ChunkSchedulesAgreeWithTheReference) {
  ProblemSize s{1, 150, 2, 9, 7};  // 2 (sequence, head) pairs
  const TensorDict in = problem(s, true, 4);
  with_threads(1, [&] { check_against_reference(in, s); });  // one pass per pair
  with_threads(4, [&] { check_against_reference(in, s); });  // chunk-parallel phases
  // Packed sequences of different lengths (the one-pass schedule skips finished pairs).
  TensorDict packed = in;
  MechanismOptions opt;
  opt.cu_seqlens = from_vector<int64_t>({0, 20, 20, 150}, {4});
  Generator gen(5);
  packed.set("initial_state", randn({3, s.H, s.K, s.V}, gen, DType::f64));  // one per sequence
  Generator gen_do(6);
  const Tensor d_o = randn({1, s.T, s.H, s.V}, gen_do, DType::f64);
  const Tensor d_final = randn({3, s.H, s.K, s.V}, gen_do, DType::f64);
  const Result ref = run_grads(Form::reference, packed, DType::f64, d_o, d_final, opt);
  for (int threads : {1, 16})  // 6 pairs: one pass, then chunk-parallel phases
    with_threads(threads, [&] {
      const Result fast = run_grads(Form::chunk, packed, DType::f32, d_o, d_final, opt);
      EXPECT_TRUE(all_close(fast.o, ref.o, 1e-5)) << threads << " threads: o";
      EXPECT_TRUE(all_close(fast.final_state, ref.final_state, 1e-5)) << threads << " threads: final_state";
      for (const auto& [n, g] : ref.grads)
        EXPECT_TRUE(all_close(fast.grads.at(n), g, 1e-4)) << threads << " threads: d" << n;
    });
}

// The value maps (mamba2's Δ and D: the value is v_scale·v and the output gains skip·v), which
// the chunk kernel applies in its own loops, against the same maps composed from tensor ops
// around the recurrent form without them, in f64, gradients included, each map alone and
// both, under both chunk schedules; and the recurrent and reference forms given the maps.
TEST(SimpleGla, ValueMapsEqualTheComposedOps) {
  ProblemSize s{2, 75, 3, 5, 4};
  Generator gen(8);
  const TensorDict base = problem(s, true, 9);
  const Tensor v_scale = add(uniform({s.B, s.T, s.H}, 0.0, 1.0, gen, DType::f64), 0.05);
  const Tensor skip = randn({s.H}, gen, DType::f64);
  const Tensor d_o = randn({s.B, s.T, s.H, s.V}, gen, DType::f64);
  const Tensor d_final = randn({s.B, s.H, s.K, s.V}, gen, DType::f64);
  for (int maps : {1, 2, 3}) {
    const bool with_scale = maps & 1, with_skip = maps & 2;
    // Leaves shared by both computations.
    auto leaves = [&] {
      TensorDict d;
      for (const auto& [n, t] : base) d.insert(n, t.detach().clone());
      if (with_scale) d.insert("v_scale", v_scale.clone());
      if (with_skip) d.insert("skip", skip.clone());
      for (const auto& [n, t] : d) t.set_requires_grad();
      return d;
    };
    auto loss_of = [&](const MechanismOutputs& out) {
      return add(sum(mul(out.o, d_o)), sum(mul(out.final_state, d_final)));
    };
    // Composed: v ← v_scale·v, recurrent form, o ← o + skip·v.
    TensorDict ref_in = leaves();
    TensorDict composed;
    for (const char* n : {"q", "k", "g", "g_gamma", "initial_state"}) composed.insert(n, ref_in.at(n));
    composed.insert("v", with_scale ? mul(ref_in.at("v"), unsqueeze(ref_in.at("v_scale"), 3)) : ref_in.at("v"));
    MechanismOutputs ref = run("simple_gla", Form::recurrent, composed);
    if (with_skip) ref.o = add(ref.o, mul(ref_in.at("v"), reshape(ref_in.at("skip"), {1, 1, s.H, 1})));
    loss_of(ref).backward();
    auto check = [&](Form form, int threads) {
      with_threads(threads, [&] {
        TensorDict in = leaves();
        MechanismOutputs fast = run("simple_gla", form, in);
        loss_of(fast).backward();
        const std::string what = fmt::format("{} maps {} threads {}", form_name(form), maps, threads);
        EXPECT_TRUE(all_close(fast.o, ref.o, 1e-10)) << what << ": o";
        EXPECT_TRUE(all_close(fast.final_state, ref.final_state, 1e-10)) << what << ": final_state";
        for (const auto& [n, t] : in) EXPECT_TRUE(all_close(t.grad(), ref_in.at(n).grad(), 1e-9)) << what << ": d" << n;
      });
    };
    for (int threads : {1, 16}) check(Form::chunk, threads);  // 6 pairs: one pass, then chunk-parallel phases
    check(Form::recurrent, 1);
    check(Form::reference, 1);
  }
}

}  // namespace
}  // namespace lnx::kernels
