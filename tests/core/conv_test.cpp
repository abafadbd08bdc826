// causal_conv1d: the fused primitive against the reference composed of ops (f32 fused vs f64
// reference, outputs and the gradients of every input), packed sequences against separate
// calls, split-and-resume through the cache, finite-difference gradients of the fused op, and
// the argument errors.
#include <gtest/gtest.h>

#include "core/conv.h"
#include "core/varlen.h"
#include "gradcheck.h"
#include "numeric.h"
#include "tensor/autograd.h"
#include "tensor/cpu/parallel.h"

namespace lnx::core {
namespace {

using ConvFn = ConvOutput (*)(const Tensor&, const Tensor&, const Tensor&, bool, const Tensor&, const Tensor&);

struct Inputs {
  Tensor x, weight, bias, cache;  // bias / cache undefined when absent
  Tensor wy, wc;                  // upstream gradients of y and of the returned cache
};

Inputs make_inputs(int64_t B, int64_t T, int64_t D, int64_t W, int64_t N, bool bias, bool cache, uint64_t seed) {
  Generator gen(seed);
  Inputs in;
  in.x = randn({B, T, D}, gen, DType::f64);
  in.weight = mul(randn({D, W}, gen, DType::f64), 0.5);
  if (bias) in.bias = randn({D}, gen, DType::f64);
  if (cache) in.cache = randn({N, W - 1, D}, gen, DType::f64);
  in.wy = randn({B, T, D}, gen, DType::f64);
  in.wc = randn({N, W - 1, D}, gen, DType::f64);
  return in;
}

// Outputs and the gradients of x, weight, bias, cache of L = Σ wy⊙y + Σ wc⊙cache, run in dtype.
struct ConvRun {
  Tensor y, cache;
  TensorList grads;  // undefined where the input is absent
};

ConvRun run(ConvFn fn, const Inputs& in, bool silu, const Tensor& cu, DType dtype) {
  TensorList leaves;
  for (const Tensor& t : {in.x, in.weight, in.bias, in.cache}) {
    Tensor l = t.defined() ? to_dtype(t, dtype).clone().detach() : Tensor();
    if (l.defined()) l.set_requires_grad(true);
    leaves.push_back(l);
  }
  ConvOutput o = fn(leaves[0], leaves[1], leaves[2], silu, leaves[3], cu);
  Tensor loss = add(sum(mul(o.y, to_dtype(in.wy, dtype))), sum(mul(o.cache, to_dtype(in.wc, dtype))));
  backward({loss});
  ConvRun r{o.y.detach(), o.cache.detach(), {}};
  for (const Tensor& l : leaves) r.grads.push_back(l.defined() ? l.grad() : Tensor());
  return r;
}

const char* kInputNames[] = {"x", "weight", "bias", "cache"};

void expect_match(const ConvRun& got, const ConvRun& want, double out_tol, double grad_tol) {
  EXPECT_TRUE(all_close(to_dtype(got.y, DType::f64), want.y, out_tol)) << "y";
  EXPECT_TRUE(all_close(to_dtype(got.cache, DType::f64), want.cache, out_tol)) << "final cache";
  for (size_t i = 0; i < 4; ++i) {
    // With W = 1 the cache [N, 0, D] has no elements; one form may leave its gradient undefined.
    auto empty = [](const Tensor& t) { return !t.defined() || t.numel() == 0; };
    if (empty(got.grads[i]) || empty(want.grads[i])) {
      EXPECT_TRUE(empty(got.grads[i]) && empty(want.grads[i])) << kInputNames[i];
    } else {
      EXPECT_TRUE(all_close(to_dtype(got.grads[i], DType::f64), want.grads[i], grad_tol))
          << "gradient of " << kInputNames[i];
    }
  }
}

struct Case {
  int64_t B, T, D, W;
  bool bias, silu, cache;
};

TEST(CausalConv1d, FusedF32MatchesF64Reference) {
  std::vector<Case> cases;
  for (int64_t W : {1, 2, 4})
    for (int flags = 0; flags < 8; ++flags)
      cases.push_back({2, 13, 37, W, (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0});
  cases.push_back({1, 1, 5, 4, true, true, true});      // one token: the cache is mostly the old cache
  cases.push_back({3, 200, 131, 4, true, true, true});  // several channel blocks, split over threads
  cases.push_back({2, 65, 67, 3, false, true, true});
  uint64_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(
        fmt::format("B={} T={} D={} W={} bias={} silu={} cache={}", c.B, c.T, c.D, c.W, c.bias, c.silu, c.cache));
    const Inputs in = make_inputs(c.B, c.T, c.D, c.W, c.B, c.bias, c.cache, seed++);
    const ConvRun want = run(causal_conv1d_reference, in, c.silu, Tensor(), DType::f64);
    expect_match(run(causal_conv1d, in, c.silu, Tensor(), DType::f32), want, 1e-5, 1e-4);
    expect_match(run(causal_conv1d, in, c.silu, Tensor(), DType::f64), want, 1e-13, 1e-12);
  }
}

TEST(CausalConv1d, StridedInputAndGradientOfTheCacheAlone) {
  // x as a transposed (non-contiguous) view, and only the returned cache gets a gradient: it
  // must still reach x and the incoming cache.
  Inputs in = make_inputs(2, 3, 9, 4, 2, true, true, 7);
  Generator gen(8);
  in.x = transpose(randn({2, 9, 3}, gen, DType::f64), 1, 2);
  in.wy = zeros({2, 3, 9}, DType::f64);
  expect_match(run(causal_conv1d, in, true, Tensor(), DType::f64),
               run(causal_conv1d_reference, in, true, Tensor(), DType::f64), 1e-13, 1e-12);
  Inputs one = make_inputs(2, 1, 9, 4, 2, false, true, 9);
  one.wy = zeros({2, 1, 9}, DType::f64);
  const ConvRun r = run(causal_conv1d, one, false, Tensor(), DType::f64);
  expect_match(r, run(causal_conv1d_reference, one, false, Tensor(), DType::f64), 1e-13, 1e-12);
  // With one token the new cache is [old cache rows 1, 2; x]: old row 0 reaches no output.
  EXPECT_EQ(max_abs_error(slice(r.grads[3], 1, 0, 1), zeros({2, 1, 9}, DType::f64)), 0.0);
  EXPECT_TRUE(all_close(slice(r.grads[3], 1, 1, 3), slice(one.wc, 1, 0, 2), 1e-15));
  EXPECT_TRUE(all_close(r.grads[0], slice(one.wc, 1, 2, 3), 1e-15));
}

TEST(CausalConv1d, PackedSequencesEqualSeparateCalls) {
  // Lengths include an empty sequence and sequences shorter than W − 1 = 3.
  const std::vector<int64_t> lengths{5, 0, 2, 9, 1, 3};
  const int64_t D = 11, W = 4, N = 6, P = 20;
  const Tensor cu = cu_seqlens_from_lengths(lengths);
  for (bool with_cache : {true, false}) {
    SCOPED_TRACE(with_cache ? "with cache" : "without cache");
    const Inputs in = make_inputs(1, P, D, W, N, true, with_cache, 21);
    const ConvRun packed = run(causal_conv1d, in, true, cu, DType::f64);
    // The reference's packed path (per-sequence op composition) agrees, gradients included.
    expect_match(packed, run(causal_conv1d_reference, in, true, cu, DType::f64), 1e-13, 1e-12);
    int64_t start = 0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t len = lengths[static_cast<size_t>(n)];
      Inputs one = in;
      one.x = slice(in.x, 1, start, start + len);
      one.wy = slice(in.wy, 1, start, start + len);
      one.wc = slice(in.wc, 0, n, n + 1);
      if (with_cache) one.cache = slice(in.cache, 0, n, n + 1);
      const ConvRun sep = run(causal_conv1d, one, true, Tensor(), DType::f64);
      EXPECT_TRUE(all_close(slice(packed.y, 1, start, start + len), sep.y, 1e-14)) << "y of sequence " << n;
      EXPECT_TRUE(all_close(slice(packed.cache, 0, n, n + 1), sep.cache, 1e-14)) << "cache of sequence " << n;
      EXPECT_TRUE(all_close(slice(packed.grads[0], 1, start, start + len), sep.grads[0], 1e-14)) << "dx " << n;
      if (with_cache) {
        EXPECT_TRUE(all_close(slice(packed.grads[3], 0, n, n + 1), sep.grads[3], 1e-14)) << "dcache " << n;
      }
      start += len;
    }
  }
}

TEST(CausalConv1d, SplitAndResumeEqualsOneCall) {
  const int64_t B = 2, T = 11, D = 7, W = 4;
  const Inputs in = make_inputs(B, T, D, W, B, true, true, 31);
  const ConvRun whole = run(causal_conv1d, in, true, Tensor(), DType::f64);
  for (int64_t split : {0, 1, 2, 3, 5, 10, 11}) {
    SCOPED_TRACE(fmt::format("split at {}", split));
    TensorList leaves{in.x.clone().detach(), in.weight.clone().detach(), in.bias.clone().detach(),
                      in.cache.clone().detach()};
    for (Tensor& l : leaves) l.set_requires_grad(true);
    ConvOutput a = causal_conv1d(slice(leaves[0], 1, 0, split), leaves[1], leaves[2], true, leaves[3], Tensor());
    ConvOutput b = causal_conv1d(slice(leaves[0], 1, split, T), leaves[1], leaves[2], true, a.cache, Tensor());
    const Tensor y = concat({a.y, b.y}, 1);
    EXPECT_TRUE(all_close(y.detach(), whole.y, 1e-14));
    EXPECT_TRUE(all_close(b.cache.detach(), whole.cache, 1e-14));
    // The gradient of the second call's cache input flows back through the first call.
    backward({add(sum(mul(y, in.wy)), sum(mul(b.cache, in.wc)))});
    for (size_t i = 0; i < 4; ++i)
      EXPECT_TRUE(all_close(leaves[i].grad(), whole.grads[i], 1e-12)) << "gradient of " << kInputNames[i];
  }
}

TEST(CausalConv1d, ResultsDoNotDependOnTheThreadCount) {
  // The channel blocking adapts to the thread count; every value must stay bit-identical.
  const Inputs in = make_inputs(3, 40, 300, 4, 3, true, true, 61);
  const int before = num_threads();
  set_num_threads(1);
  const ConvRun one = run(causal_conv1d, in, true, Tensor(), DType::f32);
  set_num_threads(7);
  const ConvRun many = run(causal_conv1d, in, true, Tensor(), DType::f32);
  set_num_threads(before);
  expect_match(many, one, 0.0, 0.0);
  EXPECT_EQ(max_abs_error(many.grads[1], one.grads[1]), 0.0);
}

TEST(CausalConv1d, NoRecordingWithoutGradMode) {
  const Inputs in = make_inputs(1, 4, 3, 4, 1, true, true, 41);
  Tensor x = in.x.clone().detach();
  x.set_requires_grad(true);
  NoGradGuard no_grad;
  ConvOutput o = causal_conv1d(x, in.weight, in.bias, true, in.cache, Tensor());
  EXPECT_FALSE(o.y.requires_grad());
  EXPECT_FALSE(o.cache.requires_grad());
}

// Finite differences of the fused op (f64); the output is y and the cache, flattened.
TEST(CausalConv1d, GradCheckFused) {
  auto conv = [](bool silu, bool bias, bool cache, bool packed) {
    return [=](const TensorList& in) {
      size_t i = 2;
      Tensor b = bias ? in[i++] : Tensor();
      Tensor c = cache ? in[i++] : Tensor();
      Tensor cu = packed ? in[i++] : Tensor();
      ConvOutput o = causal_conv1d(in[0], in[1], b, silu, c, cu);
      return concat({reshape(o.y, {-1}), reshape(o.cache, {-1})}, 0);
    };
  };
  auto packed_inputs = [](Generator& g) {
    return TensorList{randn({1, 7, 3}, g, DType::f64), randn({3, 4}, g, DType::f64), randn({3}, g, DType::f64),
                      randn({3, 3, 3}, g, DType::f64), from_vector<int64_t>({0, 2, 2, 7}, {4})};
  };
  const std::vector<GradCase> cases{
      {"w4_bias_silu_cache", {{2, 6, 5}, {5, 4}, {5}, {2, 3, 5}}, conv(true, true, true, false)},
      {"w4_plain", {{2, 6, 5}, {5, 4}}, conv(false, false, false, false)},
      {"w2_silu_cache", {{1, 5, 3}, {3, 2}, {1, 1, 3}}, conv(true, false, true, false)},
      {"w1_bias", {{2, 3, 3}, {3, 1}, {3}}, conv(false, true, false, false)},
      {"w4_cache_short_input", {{2, 2, 3}, {3, 4}, {2, 3, 3}}, conv(false, false, true, false)},
      {"w4_packed", {}, conv(true, true, true, true), packed_inputs},
  };
  for (const GradCase& c : cases) EXPECT_TRUE(check_gradients(c));
}

TEST(CausalConv1d, BadInputsNameTheProblem) {
  Generator g(51);
  const Tensor x = randn({2, 5, 3}, g), w = randn({3, 4}, g), b = randn({3}, g), c = randn({2, 3, 3}, g);
  for (ConvFn fn : {ConvFn(causal_conv1d), ConvFn(causal_conv1d_reference)}) {
    auto msg_shape = [&](const Tensor& xx, const Tensor& ww, const Tensor& bb, const Tensor& cc, const Tensor& cu) {
      return error_of<ShapeError>([&] { fn(xx, ww, bb, false, cc, cu); });
    };
    auto msg_dtype = [&](const Tensor& xx, const Tensor& ww, const Tensor& bb, const Tensor& cc) {
      return error_of<DTypeError>([&] { fn(xx, ww, bb, false, cc, Tensor()); });
    };
    EXPECT_NE(msg_shape(randn({5, 3}, g), w, b, c, {}).find("x must be [B, T, D], got [5,3]"), std::string::npos);
    EXPECT_NE(msg_shape(x, randn({4, 4}, g), b, c, {}).find("weight must be [D=3, W], got [4,4]"), std::string::npos);
    EXPECT_NE(msg_shape(x, randn({3}, g), b, c, {}).find("weight must be [D=3, W]"), std::string::npos);
    EXPECT_NE(msg_shape(x, w, randn({4}, g), c, {}).find("bias must be [D=3] f32, got [4] f32"), std::string::npos);
    EXPECT_NE(msg_shape(x, w, b, randn({2, 4, 3}, g), {}).find("cache must be [N=2, W-1=3, D=3] f32, got [2,4,3]"),
              std::string::npos);
    EXPECT_NE(msg_shape(x, w, b, randn({1, 3, 3}, g), {}).find("got [1,3,3]"), std::string::npos);
    const Tensor cu = from_vector<int64_t>({0, 2, 5}, {3});
    EXPECT_NE(msg_shape(x, w, b, c, cu).find("with cu_seqlens x must be packed as [1, T, D], got [2,5,3]"),
              std::string::npos);
    const Tensor x1 = randn({1, 5, 3}, g);
    EXPECT_NE(msg_shape(x1, w, b, randn({1, 3, 3}, g), cu).find("cache must be [N=2"), std::string::npos);

    EXPECT_NE(msg_dtype(to_dtype(x, DType::i64), w, b, c).find("x must be floating, got i64"), std::string::npos);
    EXPECT_NE(msg_dtype(x, to_dtype(w, DType::f64), b, c).find("weight is f64 but x is f32"), std::string::npos);
    EXPECT_NE(msg_dtype(x, w, to_dtype(b, DType::f64), c).find("bias must be [D=3] f32, got [3] f64"),
              std::string::npos);
    EXPECT_NE(msg_dtype(x, w, b, to_dtype(c, DType::f64)).find("cache must be [N=2, W-1=3, D=3] f32, got [2,3,3] f64"),
              std::string::npos);

    auto msg_value = [&](const Tensor& cuv) {
      return error_of<ValueError>([&] { fn(x1, w, b, false, Tensor(), cuv); });
    };
    EXPECT_NE(msg_value(from_vector<int64_t>({0, 2, 4}, {3})).find("cu_seqlens ends at 4 but x has T = 5"),
              std::string::npos);
    EXPECT_NE(msg_value(from_vector<int64_t>({0, 3, 2, 5}, {4})).find("cu_seqlens must not decrease"),
              std::string::npos);
    EXPECT_NE(msg_value(from_vector<int64_t>({1, 5}, {2})).find("cu_seqlens must start at 0"), std::string::npos);
    EXPECT_NE(msg_value(from_vector<double>({0, 5}, {2})).find("cu_seqlens must be a 1-d i32/i64 tensor"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace lnx::core
