// Registry-driven tests: every registered mechanism, every fast form (recurrent, chunk),
// against the f64 reference (DESIGN.md §8): outputs, final state and the gradients of every
// input and of the initial state; varlen; split-and-resume; finite differences of the
// reference; bad inputs. Mechanisms without an [N,H,K,V] state (has_recurrent_state false:
// softmax attention) get no initial_state and no dfinal; they resume from their extra_state.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "gradcheck.h"
#include "kernel_test_util.h"
#include "kernels/mechanism.h"
#include "numeric.h"
#include "tensor/cpu/blas.h"
#include "tensor/profile.h"

namespace lnx::kernels {
namespace {

constexpr double kOutputTol = 1e-5, kGradTol = 1e-4;

struct FormCase {
  std::string mechanism;
  Form form;
};

std::vector<FormCase> fast_forms() {
  std::vector<FormCase> cases;
  for (const auto& name : mechanism_names())
    for (Form f : {Form::recurrent, Form::chunk}) cases.push_back({name, f});
  return cases;
}

std::string form_case_name(const ::testing::TestParamInfo<FormCase>& info) {
  return info.param.mechanism + "_" + form_name(info.param.form);
}

TensorDict to_dtype(const TensorDict& d, DType dtype) {
  TensorDict out;
  for (const auto& [name, t] : d) out.insert(name, is_floating(t.dtype()) ? t.to(dtype) : t);
  return out;
}

using RunResult = GradRun;

// run_with_grads in the inputs' own floating dtype.
RunResult run_with_grads(const std::string& name, Form form, const TensorDict& inputs, const MechanismOptions& opt,
                         const Tensor& d_o, const Tensor& d_final) {
  DType dtype = DType::f64;
  for (const auto& [n, t] : inputs)
    if (is_floating(t.dtype())) {
      dtype = t.dtype();
      break;
    }
  return kernels::run_with_grads(name, form, inputs, dtype, opt, d_o, d_final);
}

// f64 problem: the mechanism's random inputs plus a random initial state (if it has one).
TensorDict make_problem(const Mechanism& m, const ProblemSize& s, int64_t N, uint64_t seed,
                        bool with_initial_state = true) {
  Generator gen(seed);
  TensorDict d = m.make_inputs(s, gen, DType::f64);
  if (with_initial_state && m.has_recurrent_state)
    d.insert("initial_state", randn({N, s.H, s.K, s.V}, gen, DType::f64));
  return d;
}

void expect_close(const RunResult& fast, const RunResult& ref, const std::string& what) {
  EXPECT_TRUE(all_close(fast.o, ref.o, kOutputTol)) << what << ": o";
  if (ref.final_state.defined()) {
    EXPECT_TRUE(all_close(fast.final_state, ref.final_state, kOutputTol)) << what << ": final_state";
  }
  for (const auto& [n, g] : ref.grads) EXPECT_TRUE(all_close(fast.grads.at(n), g, kGradTol)) << what << ": d" << n;
}

class MechanismForm : public ::testing::TestWithParam<FormCase> {};

TEST_P(MechanismForm, MatchesReferenceInF32) {
  const auto& [name, form] = GetParam();
  const Mechanism& m = mechanism(name);
  for (int64_t T : {1, 63, 65, 200}) {
    ProblemSize s{2, T, 3, 7, 9};  // odd head dims, several heads
    TensorDict in = make_problem(m, s, s.B, 100 + T);
    Generator gen(7 + T);
    Tensor d_o = randn({s.B, s.T, s.H, s.V}, gen, DType::f64);
    Tensor d_final = randn({s.B, s.H, s.K, s.V}, gen, DType::f64);
    RunResult ref = run_with_grads(name, Form::reference, in, {}, d_o, d_final);
    RunResult fast = run_with_grads(name, form, to_dtype(in, DType::f32), {}, d_o, d_final);
    expect_close(fast, ref, fmt::format("{} {} T={}", name, form_name(form), T));
  }
}

TEST_P(MechanismForm, MatchesReferenceWithoutInitialStateAndOtherChunkSizes) {
  const auto& [name, form] = GetParam();
  const Mechanism& m = mechanism(name);
  ProblemSize s{1, 77, 2, 16, 8};
  TensorDict in = make_problem(m, s, s.B, 3, /*with_initial_state=*/false);
  Generator gen(4);
  Tensor d_o = randn({s.B, s.T, s.H, s.V}, gen, DType::f64);
  Tensor d_final = randn({s.B, s.H, s.K, s.V}, gen, DType::f64);
  RunResult ref = run_with_grads(name, Form::reference, in, {}, d_o, d_final);
  for (int64_t chunk : {16, 32, 128}) {
    MechanismOptions opt;
    opt.chunk_size = chunk;
    RunResult fast = run_with_grads(name, form, to_dtype(in, DType::f32), opt, d_o, d_final);
    expect_close(fast, ref, fmt::format("{} {} chunk={}", name, form_name(form), chunk));
  }
  // A scale other than the default, and no final state asked for.
  MechanismOptions opt;
  opt.scale = 0.3;
  opt.output_final_state = false;
  RunResult ref2 = run_with_grads(name, Form::reference, in, opt, d_o, Tensor());
  RunResult fast2 = run_with_grads(name, form, to_dtype(in, DType::f32), opt, d_o, Tensor());
  EXPECT_FALSE(fast2.final_state.defined());
  expect_close(fast2, ref2, "scale=0.3");
}

TEST_P(MechanismForm, PackedSequencesEqualSeparateOnes) {
  const auto& [name, form] = GetParam();
  const Mechanism& m = mechanism(name);
  const std::vector<int64_t> lengths{37, 0, 64, 1, 100};  // an empty one, not chunk multiples
  std::vector<int64_t> cu{0};
  for (int64_t l : lengths) cu.push_back(cu.back() + l);
  const int64_t N = static_cast<int64_t>(lengths.size()), T = cu.back();
  ProblemSize s{1, T, 2, 5, 6};
  TensorDict in = make_problem(m, s, N, 11);
  MechanismOptions opt;
  opt.cu_seqlens = from_vector<int64_t>(cu, {N + 1});
  Generator gen(12);
  Tensor d_o = randn({1, T, s.H, s.V}, gen, DType::f64);
  Tensor d_final = randn({N, s.H, s.K, s.V}, gen, DType::f64);
  RunResult ref = run_with_grads(name, Form::reference, in, opt, d_o, d_final);
  RunResult fast = run_with_grads(name, form, to_dtype(in, DType::f32), opt, d_o, d_final);
  expect_close(fast, ref, "packed");
  // Each sequence alone gives the same rows and final state.
  for (int64_t n = 0; n < N; ++n) {
    TensorDict one;
    for (const auto& [key, t] : in) {
      if (key == "initial_state")
        one.insert(key, slice(t, 0, n, n + 1));
      else if (t.dim() >= 2 && t.size(1) == T)
        one.insert(key, slice(t, 1, cu[n], cu[n + 1]));
      else
        one.insert(key, t);
    }
    MechanismOutputs alone = run(name, form, to_dtype(one, DType::f32));
    EXPECT_TRUE(all_close(alone.o, slice(fast.o, 1, cu[n], cu[n + 1]), kOutputTol)) << "sequence " << n;
    if (m.has_recurrent_state) {
      EXPECT_TRUE(all_close(alone.final_state, slice(fast.final_state, 0, n, n + 1), kOutputTol)) << "sequence " << n;
    }
  }
}

TEST_P(MechanismForm, SplitAndResumeEqualsWhole) {
  const auto& [name, form] = GetParam();
  const Mechanism& m = mechanism(name);
  ProblemSize s{2, 150, 2, 6, 5};
  TensorDict in = to_dtype(make_problem(m, s, s.B, 21), DType::f32);
  MechanismOutputs whole = run(name, form, in);
  for (int64_t split : {1, 17, 64, 65, 100, 149}) {
    // The second piece resumes from the first's final_state, or from its extra_state (inputs
    // of the same names, e.g. a KV cache) when the mechanism has no recurrent state.
    auto piece = [&](int64_t a, int64_t b, const MechanismOutputs* prev) {
      TensorDict d;
      for (const auto& [key, t] : in) {
        if (key == "initial_state") continue;
        d.insert(key, t.dim() >= 2 && t.size(1) == s.T ? slice(t, 1, a, b) : t);
      }
      if (m.has_recurrent_state)
        d.insert("initial_state", prev ? prev->final_state : in.at("initial_state"));
      else if (prev)
        for (const auto& [key, t] : prev->extra_state) d.insert(key, t);
      return run(name, form, d);
    };
    MechanismOutputs first = piece(0, split, nullptr);
    MechanismOutputs second = piece(split, s.T, &first);
    EXPECT_TRUE(all_close(concat({first.o, second.o}, 1), whole.o, kOutputTol)) << "split " << split;
    if (m.has_recurrent_state) {
      EXPECT_TRUE(all_close(second.final_state, whole.final_state, kOutputTol)) << "split " << split;
    } else {
      EXPECT_FALSE(first.extra_state.empty()) << "split " << split << ": nothing to resume from";
    }
    for (const auto& [key, t] : whole.extra_state)
      EXPECT_TRUE(all_close(second.extra_state.at(key), t, kOutputTol)) << "split " << split << ": " << key;
  }
}

TEST_P(MechanismForm, BadInputsGiveClearErrors) {
  const auto& [name, form] = GetParam();
  const Mechanism& m = mechanism(name);
  ProblemSize s{2, 10, 2, 4, 3};
  TensorDict in = to_dtype(make_problem(m, s, s.B, 31), DType::f32);
  auto with = [&](const std::string& key, const Tensor& t) {
    TensorDict d;
    for (const auto& [k2, v2] : in) d.insert(k2, k2 == key ? t : v2);
    if (!d.contains(key)) d.insert(key, t);
    return d;
  };
  const std::string& k = m.key_input;
  const std::string& v = m.value_input;
  EXPECT_THROW(run(name, form, with(k, zeros({2, 10, 2, 5}))), ShapeError);
  EXPECT_THROW(run(name, form, with(v, zeros({2, 9, 2, 3}))), ShapeError);
  // Issue 14 D15: the chunk size set the workspace (2^16 asked for 32 GiB): it is bounded, and a
  // chunk longer than the sequences gives what one covering them gives.
  if (form == Form::chunk) {
    MechanismOptions big;
    big.chunk_size = 8192;
    EXPECT_NE(error_of<ValueError>([&] { run(name, form, in, big); }).find("power of two up to 4096"),
              std::string::npos);
    big.chunk_size = 4096;
    MechanismOptions fits;
    fits.chunk_size = 16;
    EXPECT_TRUE(all_close(run(name, form, in, big).o, run(name, form, in, fits).o, 1e-5, 1e-5));
  }
  // Issue 14 D13: K = 0 or V = 0 reached the kernels (memcpy of null rows under UBSan).
  for (const ProblemSize empty : {ProblemSize{2, 10, 2, 0, 3}, ProblemSize{2, 10, 2, 4, 0}}) {
    const TensorDict e = to_dtype(make_problem(m, empty, empty.B, 31), DType::f32);
    EXPECT_NE(error_of<ShapeError>([&] { run(name, form, e); }).find("must be at least 1"), std::string::npos);
  }
  EXPECT_THROW(run(name, form, with(k, zeros({2, 10, 2, 4}, DType::f64))), DTypeError);
  if (m.has_recurrent_state) {
    EXPECT_THROW(run(name, form, with("initial_state", zeros({3, 2, 4, 3}))), ShapeError);
  } else {  // not one of its inputs
    EXPECT_THROW(run(name, form, with("initial_state", zeros({3, 2, 4, 3}))), ValueError);
  }
  EXPECT_THROW(run(name, form, with("bogus", zeros({1}))), ValueError);
  TensorDict missing;
  for (const auto& [k2, v2] : in)
    if (k2 != v) missing.insert(k2, v2);
  EXPECT_THROW(run(name, form, missing), ValueError);
  // cu_seqlens: needs B = 1, must start at 0, not decrease, and end at T.
  MechanismOptions opt;
  opt.cu_seqlens = from_vector<int64_t>({0, 4, 10}, {3});
  EXPECT_THROW(run(name, form, in, opt), ShapeError);  // B = 2
  TensorDict one;  // the first batch row of every input with a batch axis (mamba's A_log [H,V,K] has none)
  for (const auto& spec : m.inputs)
    if (in.contains(spec.name) && spec.name != "initial_state")
      one.insert(spec.name, spec.dims.front() == "B" ? slice(in.at(spec.name), 0, 0, 1) : in.at(spec.name));
  opt.cu_seqlens = from_vector<int64_t>({0, 6, 4, 10}, {4});
  EXPECT_THROW(run(name, form, one, opt), ValueError);
  opt.cu_seqlens = from_vector<int64_t>({0, 4, 9}, {3});
  EXPECT_THROW(run(name, form, one, opt), ValueError);
  opt.cu_seqlens = from_vector<int64_t>({1, 4, 10}, {3});
  EXPECT_THROW(run(name, form, one, opt), ValueError);
  opt.cu_seqlens = from_vector<double>({0, 4, 10}, {3});
  EXPECT_THROW(run(name, form, one, opt), DTypeError);
  if (form == Form::chunk) {
    MechanismOptions bad;
    bad.chunk_size = 24;
    EXPECT_THROW(run(name, form, in, bad), ValueError);
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, MechanismForm, ::testing::ValuesIn(fast_forms()), form_case_name);

// ---- per mechanism ----

class MechanismReference : public ::testing::TestWithParam<std::string> {};

TEST_P(MechanismReference, HasThreeFormsAndInputs) {
  const Mechanism& m = mechanism(GetParam());
  for (Form f : kAllForms) EXPECT_TRUE(m.forms.count(f)) << m.name << " lacks " << form_name(f);
  EXPECT_TRUE(static_cast<bool>(m.make_inputs));
  EXPECT_FALSE(m.description.empty());
  bool has_h0 = false;
  for (const auto& spec : m.inputs) has_h0 = has_h0 || spec.name == "initial_state";
  EXPECT_EQ(has_h0, m.has_recurrent_state);
}

TEST_P(MechanismReference, GradientsMatchFiniteDifferences) {
  const Mechanism& m = mechanism(GetParam());
  ProblemSize s{1, 6, 2, 3, 2};
  // Packed, so varlen is differentiated too: sequences of 2 and 4 tokens.
  MechanismOptions opt;
  opt.cu_seqlens = from_vector<int64_t>({0, 2, 6}, {3});
  TensorDict problem = make_problem(m, s, 2, 41);
  std::vector<std::string> names;
  for (const auto& [n, t] : problem) names.push_back(n);
  GradCase c;
  c.name = m.name;
  c.make_inputs = [problem](Generator&) {
    TensorList xs;
    for (const auto& [n, t] : problem) xs.push_back(t);
    return xs;
  };
  c.fn = [names, opt, name = m.name](const TensorList& xs) {
    TensorDict d;
    for (size_t i = 0; i < xs.size(); ++i) d.insert(names[i], xs[i]);
    MechanismOutputs out = run(name, Form::reference, d, opt);
    return out.final_state.defined() ? concat({flatten(out.o), flatten(out.final_state)}, 0) : flatten(out.o);
  };
  c.rtol = 1e-6;
  c.atol = 1e-8;
  EXPECT_TRUE(check_gradients(c));
}

std::string mechanism_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

TEST_P(MechanismReference, EmptyBatchesAndSequencesInEveryForm) {
  // Issue 14: the reference forms failed on B = 0 and on T = 0 backward. With T = 0 the final
  // state is the initial one and its gradient passes straight through; with B = 0 every output
  // is empty (nothing to differentiate), so the forward must give the empty shapes.
  const Mechanism& m = mechanism(GetParam());
  for (Form form : kAllForms) {
    for (const ProblemSize s : {ProblemSize{0, 10, 2, 4, 3}, ProblemSize{2, 0, 2, 4, 3}}) {
      SCOPED_TRACE(std::string(form_name(form)) + (s.B == 0 ? " B = 0" : " T = 0"));
      const TensorDict in = make_problem(m, s, s.B, 5);
      const Tensor d_o = zeros({s.B, s.T, s.H, s.V}, DType::f64);
      Generator gen(9);
      const Tensor d_final = m.has_recurrent_state ? randn({s.B, s.H, s.K, s.V}, gen, DType::f64) : Tensor();
      if (s.B == 0 || (s.T == 0 && !m.has_recurrent_state)) {  // every output empty
        MechanismOptions opt;
        opt.output_final_state = m.has_recurrent_state;
        MechanismOutputs out;
        ASSERT_NO_THROW(out = run(GetParam(), form, in, opt));
        EXPECT_EQ(out.o.shape(), (Shape{s.B, s.T, s.H, s.V}));
        if (m.has_recurrent_state) {
          EXPECT_EQ(out.final_state.shape(), (Shape{s.B, s.H, s.K, s.V}));
        }
        continue;
      }
      RunResult r;
      try {
        r = run_with_grads(GetParam(), form, in, {}, d_o, d_final);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        continue;
      }
      EXPECT_EQ(r.o.shape(), (Shape{s.B, s.T, s.H, s.V}));
      if (m.has_recurrent_state && s.T == 0) {
        EXPECT_TRUE(all_close(r.final_state, in.at("initial_state"), 1e-12));
        EXPECT_TRUE(all_close(r.grads.at("initial_state"), d_final, 1e-12));
      }
    }
  }
}

// The (sequence, head) pairs where t has a non-finite element, for a tensor laid out
// [B, T, H, ...] (inputs, outputs; with cu_seqlens cu, B = 1 and the sequence is the one
// holding the token) or [N, H, ...] (states); {-1, h} for per-head [H, ...] tensors; {-1, -1}
// for any other layout.
std::set<std::pair<int64_t, int64_t>> non_finite_cells(const Tensor& t, const ProblemSize& s,
                                                       const std::vector<int64_t>& cu = {}) {
  const Shape& shape = t.shape();
  const std::vector<double> x = t.to_vector<double>();
  const int64_t N = cu.empty() ? s.B : static_cast<int64_t>(cu.size()) - 1;
  const bool per_token = shape.size() >= 3 && shape[0] == s.B && shape[1] == s.T && shape[2] == s.H;
  const bool per_sequence = !per_token && shape.size() >= 2 && shape[0] == N && shape[1] == s.H;
  const bool per_head = shape.size() >= 1 && shape[0] == s.H && !per_token && !per_sequence;
  const int64_t inner = static_cast<int64_t>(x.size()) / std::max<int64_t>(1, per_token      ? s.B * s.T * s.H
                                                                              : per_sequence ? N * s.H
                                                                              : per_head     ? s.H
                                                                                             : 1);
  auto sequence_of = [&](int64_t b, int64_t token) {
    if (cu.empty()) return b;
    return static_cast<int64_t>(std::upper_bound(cu.begin(), cu.end(), token) - cu.begin()) - 1;
  };
  std::set<std::pair<int64_t, int64_t>> cells;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isfinite(x[i])) continue;
    const int64_t row = static_cast<int64_t>(i) / inner;
    if (per_token)
      cells.insert({sequence_of(row / (s.T * s.H), row / s.H % s.T), row % s.H});
    else if (per_sequence)
      cells.insert({row / s.H, row % s.H});
    else if (per_head)
      cells.insert({-1, row});
    else
      cells.insert({-1, -1});
  }
  return cells;
}

size_t count_non_finite(const Tensor& t) {
  size_t n = 0;
  for (double x : t.to_vector<double>()) n += std::isfinite(x) ? 0 : 1;
  return n;
}

TEST_P(MechanismReference, ANonFiniteInputStaysInItsSequenceAndHead) {
  // Issue 14: a NaN in one element of q reached other rows of dk in the chunk backward. A NaN in
  // any per-token input (q, k, v, x, B, C, …) of sequence 1, head 1 must leave every other
  // sequence and head finite in every form (o, final state, every gradient), and must show in
  // o. Within its own sequence and head a blocked form may spread it to other rows of the
  // chunk: its masked intra-chunk products multiply the mask's zeros by the NaN (0 · NaN =
  // NaN), as flash-linear-attention's and fused softmax attention's do, and as the reference of
  // softmax attention does over the whole sequence.
  const Mechanism& m = mechanism(GetParam());
  // Three sequences as a batch, and three packed into one row (cu_seqlens) whose middle one
  // holds the NaN at its token 5 (a chunk of 16 straddles the boundaries).
  const std::vector<int64_t> packed = {0, 20, 37, 60};
  for (const bool varlen : {false, true}) {
    const ProblemSize s = varlen ? ProblemSize{1, 60, 3, 5, 6} : ProblemSize{3, 40, 3, 5, 6};
    const std::vector<int64_t> cu = varlen ? packed : std::vector<int64_t>{};
    const int64_t N = varlen ? 3 : s.B, row = varlen ? 0 : 1, token = varlen ? 25 : 17;
    std::vector<std::string> per_token_inputs;
    for (const auto& [n, t] : make_problem(m, s, N, 21))
      if (t.dim() == 4 && t.size(0) == s.B && t.size(1) == s.T && t.size(2) == s.H) per_token_inputs.push_back(n);
    ASSERT_FALSE(per_token_inputs.empty());
    for (const std::string& input : per_token_inputs) {
      TensorDict in = make_problem(m, s, N, 21);
      const Tensor& x = in.at(input);  // fresh and contiguous, [B, T, H, D]
      const int64_t D = x.size(3);
      static_cast<double*>(x.raw_data())[((row * s.T + token) * s.H + 1) * D + 2] = std::nan("");  // head 1
      Generator gen(3);
      const Tensor d_o = randn({s.B, s.T, s.H, s.V}, gen, DType::f64);
      const Tensor d_final = m.has_recurrent_state ? randn({N, s.H, s.K, s.V}, gen, DType::f64) : Tensor();
      MechanismOptions opt;
      opt.chunk_size = 16;
      if (varlen) opt.cu_seqlens = from_vector<int64_t>(cu, {N + 1});
      for (Form form : kAllForms) {
        const RunResult r = run_with_grads(GetParam(), form, to_dtype(in, DType::f32), opt, d_o, d_final);
        std::vector<std::pair<std::string, Tensor>> checked = {{"o", r.o}};
        if (r.final_state.defined()) checked.push_back({"final_state", r.final_state});
        for (const auto& [n, g] : r.grads) checked.push_back({"d" + n, g});
        for (const auto& [what, t] : checked) {
          SCOPED_TRACE(
              fmt::format("NaN in {}, {}, {} form, {}", input, varlen ? "packed" : "batch", form_name(form), what));
          for (const auto& [b, h] : non_finite_cells(t, s, cu)) {
            EXPECT_TRUE(b == 1 || b == -1) << "sequence " << b;
            EXPECT_TRUE(h == 1 || (b == -1 && h == -1)) << "head " << h;
          }
        }
        EXPECT_GT(count_non_finite(r.o), 0u) << input << " " << form_name(form);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, MechanismReference, ::testing::ValuesIn(mechanism_names()), mechanism_param_name);

TEST(Registry, UnknownNamesListTheRegisteredOnes) {
  try {
    mechanism("no_such_mechanism");
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("simple_gla"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_form("fused"), ValueError);
  EXPECT_EQ(parse_form("chunk"), Form::chunk);
}

}  // namespace
}  // namespace lnx::kernels

namespace lnx::kernels {
namespace {

// train.precision = bf16: every chunk form with its matrix products in bf16 (operands rounded
// to bf16, f32 sums) against the f64 reference. bf16 keeps 8 significant bits (relative
// rounding ≤ 2⁻⁹); through a chunk's products and the carried state the outputs stay within
// kBf16OutputTol and the gradients within kBf16GradTol (relative RMS; docs/architecture.md, Numerics).
constexpr double kBf16OutputTol = 1e-2, kBf16GradTol = 3e-2;

class MechanismChunkBf16 : public ::testing::TestWithParam<std::string> {};

TEST_P(MechanismChunkBf16, MatchesReferenceWithinBf16Tolerance) {
  const std::string name = GetParam();
  const Mechanism& m = mechanism(name);
  for (int64_t T : {65, 200}) {
    ProblemSize s{2, T, 3, 32, 48};
    TensorDict in = make_problem(m, s, s.B, 300 + T);
    Generator gen(11 + T);
    Tensor d_o = randn({s.B, s.T, s.H, s.V}, gen, DType::f64);
    Tensor d_final = randn({s.B, s.H, s.K, s.V}, gen, DType::f64);
    RunResult ref = run_with_grads(name, Form::reference, in, {}, d_o, d_final);
    profile_reset();
    profile_enable(true);
    RunResult f32 = run_with_grads(name, Form::chunk, to_dtype(in, DType::f32), {}, d_o, d_final);
    profile_enable(false);
    const bool uses_gemm = profile_totals().blas_flops > 0;  // mamba's selective scan has no matrix product
    RunResult bf16;
    {
      MatmulPrecisionScope precision(MatmulPrecision::bf16);
      bf16 = run_with_grads(name, Form::chunk, to_dtype(in, DType::f32), {}, d_o, d_final);
    }
    const std::string what = fmt::format("{} T={}", name, T);
    EXPECT_LT(rel_rms_error(bf16.o, ref.o), kBf16OutputTol) << what << ": o";
    if (ref.final_state.defined()) {
      EXPECT_LT(rel_rms_error(bf16.final_state, ref.final_state), kBf16OutputTol) << what << ": final_state";
    }
    for (const auto& [n, g] : ref.grads)
      EXPECT_LT(rel_rms_error(bf16.grads.at(n), g), kBf16GradTol) << what << ": d" << n;
    // Where the chunk form multiplies matrices, the bf16 run really is bf16 (f32's error is ~1e-7).
    if (uses_gemm) {
      EXPECT_GT(rel_rms_error(bf16.o, ref.o), 1e-4) << what << ": the products were not bf16";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, MechanismChunkBf16, ::testing::ValuesIn(mechanism_names()), mechanism_param_name);

}  // namespace
}  // namespace lnx::kernels
