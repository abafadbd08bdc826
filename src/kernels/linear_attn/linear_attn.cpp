// linear_attn: S_t = S_{t−1} + k_t v_tᵀ, o_t = S_tᵀ (scale · q_t) (simple_gla without a gate).
// With the option normalize, o_t /= (scale · q_t·z_t + 1e-10) with z_t = Σ_{s≤t} k_s, as
// flash-linear-attention does. The normaliser z starts at 0 in every call (and for every
// packed sequence): it is not part of the state, so it does not carry across initial_state /
// final_state, and split-and-resume holds only without normalize. Feature maps (making q·z
// positive) are the layer's job.
// The fast forms are simple_gla's without a gate (their hand-written vjps give the
// gradients). The normaliser scale·q_t·z_t is itself a linear attention with values 1 and no
// initial state, so the same form computes it (packed sequences included) and autodiff
// composes the division.
#include "kernels/builtin.h"
#include "kernels/common/registration.h"

namespace lnx::kernels {

namespace {

struct LinearAttnOptions {
  bool normalize = false;
  template <class V> void visit(V&& v) {
    v("normalize", normalize, "divide o_t by scale q_t . z_t + 1e-10, z_t the sum of the keys so far in this call");
  }
};

// The definition, token by token with tensor ops: the state S and, with normalize, the
// running key sum z (reset at the start of every sequence).
MechanismOutputs reference(const Call& c) {
  const SequenceLayout& L = c.layout;
  const bool normalize = c.options_as<LinearAttnOptions>().normalize;
  Tensor qf = mul(token_rows(c["q"]), c.scale), kf = token_rows(c["k"]), vf = token_rows(c["v"]);
  TensorList outputs, finals;
  for (int64_t n = 0; n < L.N; ++n) {
    Tensor S = c.has("initial_state") ? select(c["initial_state"], 0, n) : zeros({L.H, L.K, L.V}, c.dtype);
    Tensor z = zeros({L.H, L.K}, c.dtype);
    for (int64_t r = L.offsets[n]; r < L.offsets[n + 1]; ++r) {
      Tensor qr = select(qf, 0, r), kr = select(kf, 0, r);
      S = add(S, mul(unsqueeze(kr, 2), unsqueeze(select(vf, 0, r), 1)));
      Tensor o = sum(mul(S, unsqueeze(qr, 2)), {1});  // [H, V]
      if (normalize) {
        z = add(z, kr);
        o = div(o, add(sum(mul(qr, z), {1}, /*keepdim=*/true), 1e-10));
      }
      outputs.push_back(unsqueeze(o, 0));
    }
    finals.push_back(unsqueeze(S, 0));
  }
  MechanismOutputs out;
  out.o = outputs.empty() ? zeros({L.B, L.T, L.H, L.V}, c.dtype) : reshape(concat(outputs, 0), {L.B, L.T, L.H, L.V});
  if (c.options.output_final_state)
    out.final_state = finals.empty() ? zeros({0, L.H, L.K, L.V}, c.dtype) : concat(finals, 0);  // N = 0: B = 0
  return out;
}

MechanismOutputs via_simple_gla(const Call& c) {
  MechanismOutputs out = run("simple_gla", c.form, c.inputs, c.forward_options());
  if (!c.options_as<LinearAttnOptions>().normalize) return out;
  const SequenceLayout& L = c.layout;
  TensorDict dz;
  dz.insert("q", c["q"]);
  dz.insert("k", c["k"]);
  dz.insert("v", ones({L.B, L.T, L.H, 1}, c.dtype));
  MechanismOptions zopt = c.forward_options();
  zopt.output_final_state = false;
  Tensor den = run("simple_gla", c.form, dz, zopt).o;  // scale·q_t·z_t, [B,T,H,1]
  out.o = div(out.o, add(den, 1e-10));
  return out;
}

}  // namespace

Mechanism linear_attn_mechanism() {
  Mechanism m;
  m.name = "linear_attn";
  m.description = "linear attention (no decay); optionally normalised by the key sum of the call";
  m.equation = "S_t = S_{t-1} + k_t v_t^T,  o_t = S_t^T (scale q_t)";
  m.inputs = {InputSpec::required_input("q", {"B", "T", "H", "K"}, "queries (feature-mapped by the layer)"),
              InputSpec::required_input("k", {"B", "T", "H", "K"}, "keys (feature-mapped by the layer)"),
              InputSpec::required_input("v", {"B", "T", "H", "V"}, "values"), initial_state_spec()};
  m.options = options_schema<LinearAttnOptions>();
  m.forms = {{Form::reference, reference}, {Form::recurrent, via_simple_gla}, {Form::chunk, via_simple_gla}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) { return random_qkv(s, gen, dtype); };
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels
