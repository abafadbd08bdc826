// mamba2 (SSD, state-space duality), per head h with a scalar A_h:
//   Δ_t = softplus(dt_t + dt_bias),  A = −exp(A_log),
//   S_t = exp(Δ_t A) S_{t−1} + Δ_t B_t x_tᵀ,   y_t = S_tᵀ (scale · C_t) + D x_t.
// Inputs (the state dimension, Mamba's N, plays K; the head dim P plays V):
//   x [B,T,H,P], dt [B,T,H] (raw, before softplus), A_log [H], dt_bias [H] (optional),
//   B [B,T,H,K], C [B,T,H,K], D [H] (optional skip), initial_state [N,H,K,P].
// Grouped B/C (shared across heads) are the layer's job: it broadcasts them to [B,T,H,K].
// scale defaults to 1 (Mamba reads C unscaled).
// The fast forms are simple_gla's with q = C, k = B, v = x, g = Δ·A and the value maps
// v_scale = Δ, skip = D (Δ and g are tensor ops; autodiff carries their gradients into
// simple_gla's hand-written vjps). The chunk kernel applies the value maps in its own loops
// (composed from tensor ops they cost its forward ~40%: three passes over x-sized tensors).
#include <cmath>

#include "kernels/builtin.h"
#include "kernels/common/reference_scan.h"
#include "kernels/common/registration.h"

namespace lnx::kernels {

namespace {

Tensor time_steps(const Call& c) { return softplus(c.has("dt_bias") ? add(c["dt"], c["dt_bias"]) : c["dt"]); }

MechanismOutputs reference(const Call& c) {
  const SequenceLayout& L = c.layout;
  const int64_t rows = L.B * L.T, H = L.H;
  Tensor deltaf = reshape(time_steps(c), {rows, H});
  Tensor A = neg(exp(c["A_log"]));  // [H]
  Tensor xf = token_rows(c["x"]), Bf = token_rows(c["B"]), Cf = mul(token_rows(c["C"]), c.scale);
  Tensor Dcol = c.has("D") ? reshape(c["D"], {H, 1}) : Tensor();
  return reference_scan(c, [&](int64_t r, const Tensor& S0) {
    Tensor d = select(deltaf, 0, r);  // [H]
    Tensor xr = select(xf, 0, r);     // [H, P]
    Tensor S = mul(S0, reshape(exp(mul(d, A)), {H, 1, 1}));
    S = add(S, mul(reshape(d, {H, 1, 1}), mul(unsqueeze(select(Bf, 0, r), 2), unsqueeze(xr, 1))));
    Tensor y = sum(mul(S, unsqueeze(select(Cf, 0, r), 2)), {1});  // [H, P]
    if (Dcol.defined()) y = add(y, mul(Dcol, xr));
    return std::make_pair(S, y);
  });
}

MechanismOutputs via_simple_gla(const Call& c) {
  const Tensor delta = time_steps(c);  // [B,T,H]
  TensorDict d;
  d.insert("q", c["C"]);
  d.insert("k", c["B"]);
  d.insert("v", c["x"]);
  d.insert("g", mul(delta, neg(exp(c["A_log"]))));
  d.insert("v_scale", delta);
  if (c.has("D")) d.insert("skip", c["D"]);
  if (c.has("initial_state")) d.insert("initial_state", c["initial_state"]);
  return run("simple_gla", c.form, d, c.forward_options());
}

}  // namespace

Mechanism mamba2_mechanism() {
  Mechanism m;
  m.name = "mamba2";
  m.description = "Mamba-2 SSD: a scalar decay per head, dt = softplus(dt_raw + dt_bias), A = -exp(A_log)";
  m.equation = "S_t = exp(dt_t A) S_{t-1} + dt_t B_t x_t^T,  y_t = S_t^T (scale C_t) + D x_t";
  m.inputs = {InputSpec::required_input("x", {"B", "T", "H", "V"}, "values (Mamba's head dim P plays V)"),
              InputSpec::required_input("dt", {"B", "T", "H"}, "raw time steps (before softplus)"),
              InputSpec::required_input("A_log", {"H"}, "log of -A (A = -exp(A_log))"),
              InputSpec::optional_input("dt_bias", {"H"}, "added to dt before softplus"),
              InputSpec::required_input("B", {"B", "T", "H", "K"}, "input projection (state dim N plays K)"),
              InputSpec::required_input("C", {"B", "T", "H", "K"}, "output projection"),
              InputSpec::optional_input("D", {"H"}, "skip: y += D x"),
              initial_state_spec()};
  m.default_scale = DefaultScale::one;
  // (move-assigned: copy-assigning a one-letter literal trips GCC 12's -Wrestrict false positive)
  m.key_input = std::string("B");
  m.value_input = std::string("x");
  m.forms = {{Form::reference, reference}, {Form::recurrent, via_simple_gla}, {Form::chunk, via_simple_gla}};
  // Log gates Δ·A: Δ = softplus(N(0,1) + bias) is about 0.1 … 3, A spans −0.01 … −20, so the
  // gates run from nearly 0 to about −60.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d;
    d.insert("x", randn({s.B, s.T, s.H, s.V}, gen, dtype));
    d.insert("dt", randn({s.B, s.T, s.H}, gen, dtype));
    d.insert("A_log", uniform({s.H}, std::log(0.01), std::log(20.0), gen, dtype));
    d.insert("dt_bias", mul(randn({s.H}, gen, dtype), 0.5));
    d.insert("B", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("C", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("D", randn({s.H}, gen, dtype));
    return d;
  };
  // As simple_gla (the gate and value maps are O(T·H·V), not counted).
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels
