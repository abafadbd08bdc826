// linear_attn with normalize = true (the registry-driven tests run the default, without):
// the fast forms against the f64 reference, outputs and gradients, packed sequences too.
// q and k go through a positive feature map (as a layer would) so q·z stays away from 0.
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "kernels/mechanism.h"
#include "numeric.h"

namespace lnx::kernels {
namespace {

using Result = GradRun;

Result run_normalized(Form form, const TensorDict& inputs, DType dtype, const MechanismOptions& opt, const Tensor& d_o,
                      const Tensor& d_final) {
  return run_with_grads("linear_attn", form, inputs, dtype, opt, d_o, d_final);
}

TensorDict positive_problem(int64_t B, int64_t T, int64_t H, int64_t K, int64_t V, int64_t N, uint64_t seed) {
  Generator gen(seed);
  TensorDict d;
  d.insert("q", exp(mul(randn({B, T, H, K}, gen, DType::f64), 0.5)));
  d.insert("k", exp(mul(randn({B, T, H, K}, gen, DType::f64), 0.5)));
  d.insert("v", randn({B, T, H, V}, gen, DType::f64));
  d.insert("initial_state", randn({N, H, K, V}, gen, DType::f64));
  return d;
}

void expect_close(const Result& fast, const Result& ref, const std::string& what) {
  EXPECT_TRUE(all_close(fast.o, ref.o, 1e-5)) << what << ": o";
  EXPECT_TRUE(all_close(fast.final_state, ref.final_state, 1e-5)) << what << ": final_state";
  for (const auto& [n, g] : ref.grads) EXPECT_TRUE(all_close(fast.grads.at(n), g, 1e-4)) << what << ": d" << n;
}

TEST(LinearAttnNormalize, FastFormsMatchReference) {
  for (int64_t T : {1, 63, 65, 200}) {
    TensorDict in = positive_problem(2, T, 3, 7, 9, 2, 50 + T);
    Generator gen(T);
    Tensor d_o = randn({2, T, 3, 9}, gen, DType::f64), d_final = randn({2, 3, 7, 9}, gen, DType::f64);
    MechanismOptions opt;
    opt.set("normalize", true);
    Result ref = run_normalized(Form::reference, in, DType::f64, opt, d_o, d_final);
    for (Form f : {Form::recurrent, Form::chunk})
      expect_close(run_normalized(f, in, DType::f32, opt, d_o, d_final), ref, fmt::format("{} T={}", form_name(f), T));
  }
}

TEST(LinearAttnNormalize, PackedSequencesAndChunkSizes) {
  const std::vector<int64_t> cu{0, 37, 37, 101, 102, 202};
  TensorDict in = positive_problem(1, 202, 2, 5, 6, 5, 77);
  Generator gen(78);
  Tensor d_o = randn({1, 202, 2, 6}, gen, DType::f64), d_final = randn({5, 2, 5, 6}, gen, DType::f64);
  MechanismOptions opt;
  opt.set("normalize", true);
  opt.cu_seqlens = from_vector<int64_t>(cu, {6});
  Result ref = run_normalized(Form::reference, in, DType::f64, opt, d_o, d_final);
  for (int64_t chunk : {16, 64}) {
    opt.chunk_size = chunk;
    for (Form f : {Form::recurrent, Form::chunk})
      expect_close(run_normalized(f, in, DType::f32, opt, d_o, d_final), ref,
                   fmt::format("{} chunk={}", form_name(f), chunk));
  }
}

TEST(LinearAttnNormalize, ReferenceNormalisesByTheKeySum) {
  // One token, one head: o = (S0 + k vᵀ)ᵀ (s q) / (s q·k + 1e-10).
  TensorDict in = positive_problem(1, 1, 1, 3, 2, 1, 5);
  MechanismOptions opt;
  opt.set("normalize", true);
  Tensor o = run("linear_attn", Form::reference, in, opt).o;
  const double s = 1.0 / std::sqrt(3.0);
  Tensor q = reshape(in.at("q"), {3}), k = reshape(in.at("k"), {3}), v = reshape(in.at("v"), {2});
  Tensor S = add(reshape(in.at("initial_state"), {3, 2}), mul(unsqueeze(k, 1), unsqueeze(v, 0)));
  Tensor expect = div(sum(mul(S, unsqueeze(mul(q, s), 1)), {0}), add(sum(mul(mul(q, s), k)), 1e-10));
  EXPECT_TRUE(all_close(reshape(o, {2}), expect, 1e-12));
}

}  // namespace
}  // namespace lnx::kernels
