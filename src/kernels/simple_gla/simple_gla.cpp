// simple_gla and retention: declarations, the reference form, and the fast forms (the
// recurrent and chunk primitives of recurrent.cpp and chunk.cpp).
#include "kernels/simple_gla/simple_gla.h"

#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/common/reference_scan.h"
#include "kernels/common/registration.h"
#include "kernels/simple_gla/simple_gla_internal.h"

namespace lnx::kernels {

namespace simple_gla_detail {

std::vector<InputSpec> input_specs(bool value_maps) {
  std::vector<InputSpec> s = qkv_specs();
  s.push_back(InputSpec::optional_input("g", {"B", "T", "H"}, "log gates (<= 0)"));
  s.push_back(InputSpec::optional_input("g_gamma", {"H"}, "fixed per-head log decay"));
  if (value_maps) {
    s.push_back(InputSpec::optional_input("v_scale", {"B", "T", "H"}, "value scale: the state takes v_scale * v"));
    s.push_back(InputSpec::optional_input("skip", {"H"}, "skip: o += skip * v"));
  }
  s.push_back(initial_state_spec());
  return s;
}

void store_gate_grads(const KernelArgs& a, const std::vector<double>& dgt, TensorDict& grads) {
  const int64_t H = a.L.H, rows = a.L.B * a.L.T;
  dispatch_float(a.dtype, a.op, [&]<typename T>() {
    if (a.has("g")) {
      Tensor dg = Tensor::empty({a.L.B, a.L.T, H}, a.dtype);
      T* p = dg.data<T>();
      for (int64_t i = 0; i < rows * H; ++i) p[i] = static_cast<T>(dgt[i]);
      grads.insert("g", dg);
    }
    if (a.has("g_gamma")) {
      std::vector<double> sum(static_cast<size_t>(H), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t h = 0; h < H; ++h) sum[h] += dgt[r * H + h];
      Tensor dgamma = Tensor::empty({H}, a.dtype);
      for (int64_t h = 0; h < H; ++h) dgamma.data<T>()[h] = static_cast<T>(sum[h]);
      grads.insert("g_gamma", dgamma);
    }
  });
}

}  // namespace simple_gla_detail

using namespace simple_gla_detail;

namespace {

// The definition, token by token with tensor ops (autodiff gives its gradients).
MechanismOutputs reference(const Call& c) {
  const SequenceLayout& L = c.layout;
  Tensor qf = mul(token_rows(c["q"]), c.scale), kf = token_rows(c["k"]), vf = token_rows(c["v"]);
  Tensor gf = c.has("g") ? reshape(c["g"], {L.B * L.T, L.H, 1, 1}) : Tensor();
  Tensor decay_gamma = c.has("g_gamma") ? reshape(exp(c["g_gamma"]), {L.H, 1, 1}) : Tensor();
  Tensor vsf = c.has("v_scale") ? reshape(c["v_scale"], {L.B * L.T, L.H, 1}) : Tensor();
  Tensor skip = c.has("skip") ? reshape(c["skip"], {L.H, 1}) : Tensor();
  return reference_scan(c, [&](int64_t t, const Tensor& S0) {
    Tensor S = S0;  // [H, K, V]
    if (gf.defined()) S = mul(S, exp(select(gf, 0, t)));
    if (decay_gamma.defined()) S = mul(S, decay_gamma);
    Tensor v = select(vf, 0, t);  // [H, V]
    S = add(S, mul(unsqueeze(select(kf, 0, t), 2), unsqueeze(vsf.defined() ? mul(v, select(vsf, 0, t)) : v, 1)));
    Tensor o = sum(mul(S, unsqueeze(select(qf, 0, t), 2)), {1});  // [H, V]
    if (skip.defined()) o = add(o, mul(skip, v));
    return std::make_pair(S, o);
  });
}

// The recurrent primitive takes no value maps: v_scale·v and skip·v are ops around it.
MechanismOutputs recurrent(const Call& c) {
  if (!c.has("v_scale") && !c.has("skip")) return run_primitive(recurrent_primitive(), c);
  TensorDict in;
  for (const char* name : {"q", "k", "g", "g_gamma", "initial_state"})
    if (c.has(name)) in.insert(name, c[name]);
  in.insert("v", c.has("v_scale") ? mul(c["v"], unsqueeze(c["v_scale"], 3)) : c["v"]);
  MechanismOutputs out = run_primitive(recurrent_primitive(), c.form, in, c.forward_options());
  if (c.has("skip")) out.o = add(out.o, mul(c["v"], reshape(c["skip"], {1, 1, c.layout.H, 1})));
  return out;
}

MechanismOutputs chunk(const Call& c) { return run_primitive(chunk_primitive(), c); }

}  // namespace

Tensor retention_log_decays(int64_t H, DType dtype) {
  std::vector<double> g(H);
  for (int64_t h = 0; h < H; ++h) g[h] = std::log(1.0 - std::pow(2.0, -5.0 - static_cast<double>(h)));
  return from_vector<double>(g, {H}).to(dtype);
}

Mechanism simple_gla_mechanism() {
  Mechanism m;
  m.name = "simple_gla";
  m.description = "gated linear attention with a scalar gate per head (and Mamba-2's value maps)";
  m.equation = "S_t = exp(g_t) S_{t-1} + k_t (v_scale_t v_t)^T,  o_t = S_t^T (scale q_t) + skip v_t";
  m.inputs = input_specs(/*value_maps=*/true);
  m.forms = {{Form::reference, reference}, {Form::recurrent, recurrent}, {Form::chunk, chunk}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype);
    d.insert("g", random_log_gates({s.B, s.T, s.H}, gen, dtype));
    return d;
  };
  m.flops = linear_recurrence_flops;
  return m;
}

// retention (RetNet): simple_gla with the fixed decays g_gamma_h = log(1 − 2^(−5−h)).
Mechanism retention_mechanism() {
  Mechanism m;
  m.name = "retention";
  m.description = "RetNet retention: simple_gla with a fixed decay per head";
  m.equation = "S_t = gamma_h S_{t-1} + k_t v_t^T,  o_t = S_t^T (scale q_t),  gamma_h = 1 - 2^(-5-h)";
  m.inputs = qkv_specs();
  m.inputs.push_back(initial_state_spec());
  for (Form form : kAllForms)
    m.forms[form] = [](const Call& c) {
      TensorDict d = c.inputs;
      d.insert("g_gamma", retention_log_decays(c.layout.H, c.dtype));
      return run("simple_gla", c.form, d, c.forward_options());
    };
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) { return random_qkv(s, gen, dtype); };
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels
