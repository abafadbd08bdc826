// mamba: the Mamba-1 selective scan (Gu & Dao, 2023), per channel d and state index n:
//   Δ_t = softplus(dt_t + dt_bias),  A = −exp(A_log),
//   h_t[n,d] = exp(Δ_t[d]·A[d,n])·h_{t−1}[n,d] + Δ_t[d]·B_t[n]·x_t[d],
//   y_t[d]   = scale · Σ_n C_t[n]·h_t[n,d] + D[d]·x_t[d].
// Layout: the heads H are the groups of grouped B/C (mamba_ssm's ngroups; H = 1 is Mamba's
// shared B/C), the state dim N plays K and the channels of a group play V, so the channel
// axis of Mamba (d_inner) is H·V and the state of one (sequence, group) is [K, V].
// scale defaults to 1 (Mamba reads C unscaled); options.scale multiplies the C·h term only.
// The silu(z) output gate is the layer's job.
//
// This file: the declaration, the reference form, and the fast forms, which are compositions:
// dt + dt_bias and A = −exp(A_log)ᵀ as tensor ops, then the core scan primitive (recurrent.cpp
// or chunk.cpp, with Δ = softplus(dt + dt_bias) fused into its node), then the D skip as
// tensor ops; autodiff carries the gradients through the ops.
#include <cmath>

#include "kernels/builtin.h"
#include "kernels/common/reference_scan.h"
#include "kernels/common/registration.h"
#include "kernels/mamba/mamba_internal.h"

namespace lnx::kernels {

namespace mamba_detail {

// The core scan's inputs (mamba_internal.h).
std::vector<InputSpec> scan_specs() {
  return {InputSpec::required_input("x", {"B", "T", "H", "V"}, "inputs"),
          InputSpec::required_input("dt", {"B", "T", "H", "V"}, "time steps before the softplus (dt + dt_bias)"),
          InputSpec::required_input("A", {"H", "K", "V"}, "A = -exp(A_log), transposed (<= 0)"),
          InputSpec::required_input("B", {"B", "T", "H", "K"}, "input projection"),
          InputSpec::required_input("C", {"B", "T", "H", "K"}, "output projection"),
          initial_state_spec()};
}

}  // namespace mamba_detail

namespace {

using namespace mamba_detail;

// The mechanism's inputs: x, dt, A_log, dt_bias, B, C, D, initial_state.
std::vector<InputSpec> mechanism_specs() {
  return {InputSpec::required_input("x", {"B", "T", "H", "V"}, "inputs (the channels of group h)"),
          InputSpec::required_input("dt", {"B", "T", "H", "V"}, "raw time steps per channel (before softplus)"),
          InputSpec::required_input("A_log", {"H", "V", "K"},
                                    "log of -A (A = -exp(A_log)); mamba_ssm's "
                                    "[d_inner, d_state]"),
          InputSpec::optional_input("dt_bias", {"H", "V"}, "added to dt before softplus"),
          InputSpec::required_input("B", {"B", "T", "H", "K"}, "input projection, shared by a group's channels"),
          InputSpec::required_input("C", {"B", "T", "H", "K"}, "output projection, shared by a group's channels"),
          InputSpec::optional_input("D", {"H", "V"}, "skip: y += D x"),
          initial_state_spec()};
}

// dt + dt_bias: the time steps before the softplus, [B, T, H, V].
Tensor raw_time_steps(const Call& c) {
  const SequenceLayout& L = c.layout;
  return c.has("dt_bias") ? add(c["dt"], reshape(c["dt_bias"], {1, 1, L.H, L.V})) : c["dt"];
}

// A = −exp(A_log) as the scan reads it: [H, K, V].
Tensor decay_rates(const Call& c) { return transpose(neg(exp(c["A_log"])), 1, 2); }

// The definition, token by token with tensor ops (autodiff gives its gradients).
MechanismOutputs reference(const Call& c) {
  const SequenceLayout& L = c.layout;
  const int64_t rows = L.B * L.T;
  Tensor deltaf = reshape(softplus(raw_time_steps(c)), {rows, L.H, L.V});
  Tensor A = decay_rates(c);
  Tensor xf = token_rows(c["x"]), Bf = token_rows(c["B"]), Cf = mul(token_rows(c["C"]), c.scale);
  return reference_scan(c, [&](int64_t r, const Tensor& S0) {
    Tensor d = select(deltaf, 0, r);                   // [H, V]
    Tensor xr = select(xf, 0, r);                      // [H, V]
    Tensor S = mul(S0, exp(mul(unsqueeze(d, 1), A)));  // decays exp(Δ[d]·A[n,d]), [H, K, V]
    S = add(S, mul(unsqueeze(select(Bf, 0, r), 2), unsqueeze(mul(d, xr), 1)));
    Tensor y = sum(mul(S, unsqueeze(select(Cf, 0, r), 2)), {1});  // [H, V]
    if (c.has("D")) y = add(y, mul(c["D"], xr));
    return std::make_pair(S, y);
  });
}

// ops → the scan primitive → ops.
MechanismOutputs fast(const Call& c) {
  TensorDict in;
  in.insert("x", c["x"]);
  in.insert("dt", raw_time_steps(c));
  in.insert("A", contiguous(decay_rates(c)));
  in.insert("B", c["B"]);
  in.insert("C", c["C"]);
  if (c.has("initial_state")) in.insert("initial_state", c["initial_state"]);
  const Primitive& scan = c.form == Form::chunk ? chunk_primitive() : recurrent_primitive();
  MechanismOutputs out = run_primitive(scan, c.form, in, c.forward_options());
  if (c.has("D")) out.o = add(out.o, mul(c["x"], reshape(c["D"], {1, 1, c.layout.H, c.layout.V})));
  return out;
}

}  // namespace

Mechanism mamba_mechanism() {
  Mechanism m;
  m.name = "mamba";
  m.description =
      "Mamba-1 selective scan: a decay per channel and state index, dt = softplus(dt_raw + dt_bias), "
      "A = -exp(A_log); heads are the groups of grouped B/C";
  m.equation = "h_t = exp(dt_t[d] A[d,:]) h_{t-1} + dt_t[d] B_t x_t[d] per channel d,  y_t = scale C_t . h_t + D x_t";
  m.inputs = mechanism_specs();
  m.forms = {{Form::reference, reference}, {Form::recurrent, fast}, {Form::chunk, fast}};
  m.default_scale = DefaultScale::one;
  // (move-assigned: copy-assigning a one-letter literal trips GCC 12's -Wrestrict false positive)
  m.key_input = std::string("B");
  m.value_input = std::string("x");
  // As mamba_ssm initialises them: A = -(1 … K) along the state dim (S4D-real), here with a
  // random spread of a factor e^{±0.5}; dt = N(0,1)·0.5 − 1 with a small bias, so Δ is about
  // 0.1 … 1 and the log decays Δ·A run from about −0.05 to −K.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d;
    d.insert("x", randn({s.B, s.T, s.H, s.V}, gen, dtype));
    d.insert("dt", sub(mul(randn({s.B, s.T, s.H, s.V}, gen, dtype), 0.5), 1.0));
    std::vector<double> a(static_cast<size_t>(s.H * s.V * s.K));
    for (size_t i = 0; i < a.size(); ++i) a[i] = std::log(static_cast<double>(i % s.K + 1));
    Tensor spread = uniform({s.H, s.V, s.K}, -0.5, 0.5, gen, DType::f64);
    d.insert("A_log", add(from_vector<double>(a, {s.H, s.V, s.K}), spread).to(dtype));
    d.insert("dt_bias", mul(randn({s.H, s.V}, gen, dtype), 0.1));
    d.insert("B", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("C", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("D", randn({s.H, s.V}, gen, dtype));
    return d;
  };
  // Per token, group, state index and channel: the decay's argument (1), the update (3) and
  // the read (2); the exponential is counted as one FLOP. The chunk form does about twice this
  // work (its second scan), which is not counted as useful.
  m.flops = [](const ProblemSize& s, Form, int64_t) { return 7.0 * static_cast<double>(s.B) * s.T * s.H * s.K * s.V; };
  return m;
}

}  // namespace lnx::kernels
