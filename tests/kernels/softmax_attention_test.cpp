// softmax_attention beyond the registry-driven tests: sliding windows, grouped KV heads, a KV
// cache (with gradients into it, prefill and token-by-token decoding), extreme logits, bad
// inputs, and that the chunk form's memory stays linear in T.
#include <gtest/gtest.h>

#include <cmath>

#include "kernel_test_util.h"
#include "kernels/mechanism.h"
#include "numeric.h"

namespace lnx::kernels {
namespace {

const char* kName = "softmax_attention";

using Result = GradRun;

Result run_grads(Form form, const TensorDict& inputs, DType dtype, const Tensor& d_o,
                 const MechanismOptions& opt = {}) {
  return run_with_grads(kName, form, inputs, dtype, opt, d_o);
}

// q [B,T,H,K], k/v [B,T,HK,·], and a cache of Tc tokens for N sequences when Tc > 0.
TensorDict problem(int64_t B, int64_t T, int64_t H, int64_t HK, int64_t K, int64_t V, int64_t Tc, int64_t N,
                   uint64_t seed) {
  Generator gen(seed);
  TensorDict d;
  d.insert("q", randn({B, T, H, K}, gen, DType::f64));
  d.insert("k", randn({B, T, HK, K}, gen, DType::f64));
  d.insert("v", randn({B, T, HK, V}, gen, DType::f64));
  if (Tc > 0) {
    d.insert("k_cache", randn({N, Tc, HK, K}, gen, DType::f64));
    d.insert("v_cache", randn({N, Tc, HK, V}, gen, DType::f64));
  }
  return d;
}

// Both fast forms in f32 against the f64 reference: o and the gradient of every input.
void check_against_reference(const TensorDict& in, const MechanismOptions& opt, const std::string& what) {
  const Tensor& q = in.at("q");
  Generator gen(5);
  Tensor d_o = randn({q.size(0), q.size(1), q.size(2), in.at("v").size(3)}, gen, DType::f64);
  Result ref = run_grads(Form::reference, in, DType::f64, d_o, opt);
  for (Form f : {Form::recurrent, Form::chunk}) {
    Result fast = run_grads(f, in, DType::f32, d_o, opt);
    EXPECT_TRUE(all_close(fast.o, ref.o, 1e-5)) << what << " " << form_name(f) << ": o";
    for (const auto& [n, g] : ref.grads)
      EXPECT_TRUE(all_close(fast.grads.at(n), g, 1e-4)) << what << " " << form_name(f) << ": d" << n;
  }
}

TEST(SoftmaxAttention, WindowOfOneAndFirstTokenReturnV) {
  TensorDict in = problem(2, 9, 4, 2, 5, 3, 0, 2, 1);
  // Query head h reads kv head h / 2: v repeated per group.
  Tensor v_rep = reshape(expand(unsqueeze(in.at("v"), 3), {2, 9, 2, 2, 3}), {2, 9, 4, 3});
  MechanismOptions opt;
  opt.set("window", int64_t{1});
  for (Form f : kAllForms) {
    EXPECT_TRUE(all_close(run(kName, f, in, opt).o, v_rep, 1e-12)) << form_name(f);
    Tensor o = run(kName, f, in).o;
    EXPECT_TRUE(all_close(slice(o, 1, 0, 1), slice(v_rep, 1, 0, 1), 1e-12)) << form_name(f);
  }
}

TEST(SoftmaxAttention, SlidingWindowMatchesReference) {
  for (int64_t window : {1, 5, 33, 100}) {
    TensorDict in = problem(2, 90, 3, 3, 8, 6, 0, 2, 10 + window);
    MechanismOptions opt;
    opt.set("window", window);
    opt.chunk_size = 16;
    check_against_reference(in, opt, fmt::format("window={}", window));
  }
}

TEST(SoftmaxAttention, GroupedHeadsEqualRepeatedHeads) {
  for (int64_t HK : {1, 2, 4}) {
    TensorDict in = problem(1, 70, 4, HK, 6, 7, 0, 1, 20 + HK);
    check_against_reference(in, {}, fmt::format("HK={}", HK));
    // The same as full multi-head attention with each kv head repeated for its group.
    TensorDict rep;
    rep.insert("q", in.at("q"));
    for (const char* name : {"k", "v"}) {
      const Tensor& t = in.at(name);
      rep.insert(name, reshape(expand(unsqueeze(t, 3), {1, 70, HK, 4 / HK, t.size(3)}), {1, 70, 4, t.size(3)}));
    }
    for (Form f : kAllForms)
      EXPECT_TRUE(all_close(run(kName, f, in).o, run(kName, f, rep).o, 1e-12)) << form_name(f) << " HK=" << HK;
  }
}

TEST(SoftmaxAttention, CacheWithWindowAndVarlenMatchesReference) {
  // Prefill after a cache of 23 tokens, gradients into the cache included.
  for (int64_t window : {0, 7, 40}) {
    TensorDict in = problem(2, 50, 4, 2, 5, 6, 23, 2, 30 + window);
    MechanismOptions opt;
    opt.set("window", window);
    opt.chunk_size = 16;
    check_against_reference(in, opt, fmt::format("cache, window={}", window));
    // Packed sequences of 0, 17, 33 tokens, each after its own cache.
    TensorDict packed = problem(1, 50, 4, 2, 5, 6, 23, 3, 40 + window);
    opt.cu_seqlens = from_vector<int64_t>({0, 0, 17, 50}, {4});
    check_against_reference(packed, opt, fmt::format("cache, varlen, window={}", window));
  }
}

TEST(SoftmaxAttention, DecodingTokenByTokenEqualsPrefill) {
  // A cache of 9 tokens, then 30 new tokens: the chunk form's prefill of all 30 against the
  // recurrent form fed one token (then four) at a time, each step resuming from the previous
  // step's extra_state.
  for (int64_t window : {0, 12}) {
    TensorDict in = problem(2, 30, 2, 1, 6, 5, 9, 2, 50 + window);
    MechanismOptions opt;
    opt.set("window", window);
    TensorDict f32;
    for (const auto& [n, t] : in) f32.insert(n, t.to(DType::f32));
    MechanismOutputs whole = run(kName, Form::chunk, f32, opt);
    for (int64_t step : {1, 4}) {
      Tensor kc = f32.at("k_cache"), vc = f32.at("v_cache");
      TensorList outs;
      for (int64_t t = 0; t < 30; t += step) {
        const int64_t e = std::min<int64_t>(30, t + step);
        TensorDict d{{"q", slice(f32.at("q"), 1, t, e)},
                     {"k", slice(f32.at("k"), 1, t, e)},
                     {"v", slice(f32.at("v"), 1, t, e)},
                     {"k_cache", kc},
                     {"v_cache", vc}};
        MechanismOutputs out = run(kName, Form::recurrent, d, opt);
        outs.push_back(out.o);
        kc = out.extra_state.at("k_cache"), vc = out.extra_state.at("v_cache");
      }
      EXPECT_EQ(kc.size(1), 39);
      EXPECT_TRUE(all_close(concat(outs, 1), whole.o, 1e-5)) << "step " << step << " window " << window;
      EXPECT_TRUE(all_close(kc, whole.extra_state.at("k_cache"), 0)) << "step " << step;
      EXPECT_TRUE(all_close(vc, whole.extra_state.at("v_cache"), 0)) << "step " << step;
    }
  }
}

TEST(SoftmaxAttention, ExtremeLogitsStayFiniteAndAccurate) {
  TensorDict in = problem(1, 100, 2, 1, 8, 4, 5, 1, 60);
  Generator gen(61);
  Tensor d_o = randn({1, 100, 2, 4}, gen, DType::f64);
  for (double scale : {1e3, -1e3}) {
    MechanismOptions opt;
    opt.scale = scale;
    opt.chunk_size = 16;
    Result ref = run_grads(Form::reference, in, DType::f64, d_o, opt);
    for (Form f : {Form::recurrent, Form::chunk}) {
      // In f64 the fast forms agree with the reference; in f32 everything stays finite.
      Result r64 = run_grads(f, in, DType::f64, d_o, opt);
      EXPECT_TRUE(all_close(r64.o, ref.o, 1e-9)) << form_name(f) << " scale " << scale;
      for (const auto& [n, g] : ref.grads)
        EXPECT_TRUE(all_close(r64.grads.at(n), g, 1e-8)) << form_name(f) << " d" << n << " scale " << scale;
      Result r32 = run_grads(f, in, DType::f32, d_o, opt);
      auto finite = [](const Tensor& t) {
        for (double x : t.to_vector<double>())
          if (!std::isfinite(x)) return false;
        return true;
      };
      EXPECT_TRUE(finite(r32.o)) << form_name(f) << " scale " << scale;
      for (const auto& [n, g] : r32.grads) EXPECT_TRUE(finite(g)) << form_name(f) << " d" << n;
    }
  }
}

TEST(SoftmaxAttention, ChunkMemoryIsLinearInT) {
  // T = 20000: a [T, T] f32 score matrix alone would be 1.6 GB. Forward and backward of the
  // chunk form must stay far below it (inputs and gradients here are a few MB).
  const int64_t T = 20000;
  Generator gen(70);
  TensorDict in;
  for (const char* n : {"q", "k", "v"}) {
    Tensor t = randn({1, T, 1, 4}, gen, DType::f32);
    t.set_requires_grad();
    in.insert(n, t);
  }
  reset_allocator_peak();
  const AllocatorStats before = allocator_stats();
  MechanismOutputs out = run(kName, Form::chunk, in);
  sum(out.o).backward();
  const AllocatorStats after = allocator_stats();
  const double used = static_cast<double>(after.peak_bytes_in_use - before.bytes_in_use);
  EXPECT_LT(used, static_cast<double>(T) * T * 4 / 16) << "peak bytes in use " << used;
  EXPECT_TRUE(in.at("k").grad().defined());
}

TEST(SoftmaxAttention, BadInputsGiveClearErrors) {
  TensorDict in = problem(2, 6, 4, 2, 3, 3, 4, 2, 80);
  auto with = [&](const std::string& key, const Tensor& t) {
    TensorDict d;
    for (const auto& [k2, v2] : in)
      if (k2 != key) d.insert(k2, v2);
    if (t.defined()) d.insert(key, t);
    return d;
  };
  for (Form f : kAllForms) {
    EXPECT_THROW(run(kName, f, with("k", zeros({2, 6, 3, 3}, DType::f64))), ShapeError);  // 3 ∤ 4
    EXPECT_THROW(run(kName, f, with("v_cache", Tensor())), ValueError);                   // k_cache alone
    EXPECT_THROW(run(kName, f, with("k_cache", zeros({3, 4, 2, 3}, DType::f64))), ShapeError);
    EXPECT_THROW(run(kName, f, with("v_cache", zeros({2, 5, 2, 3}, DType::f64))), ShapeError);
    EXPECT_THROW(run(kName, f, with("v_cache", zeros({2, 4, 2, 3}, DType::f32))), DTypeError);
    MechanismOptions opt;
    opt.set("window", int64_t{-1});
    EXPECT_THROW(run(kName, f, in, opt), ValueError);
  }
}

}  // namespace
}  // namespace lnx::kernels
