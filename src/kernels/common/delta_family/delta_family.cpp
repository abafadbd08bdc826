// The delta-rule family's shared declaration: inputs, options, random inputs, the reference
// recurrence (u_t = β_t (v_t − S'ᵀ k_t), S_t = S' + k_t u_tᵀ, o_t = S_tᵀ (scale · q_t), S'
// given by the mechanism's gate) and the forms that run a primitive after the in-kernel L2
// norm of q and k.
#include "kernels/common/delta_family/delta_family_internal.h"

#include "kernels/common/gates.h"
#include "kernels/common/reference_scan.h"
#include "kernels/common/registration.h"

namespace lnx::kernels::delta_detail {

namespace {

constexpr double kL2NormEps = 1e-6;  // fla's use_qk_l2norm_in_kernel: x / sqrt(Σx² + 1e-6)

bool l2norm(const Call& c) { return c.options_as<DeltaRuleOptions>().use_qk_l2norm; }

}  // namespace

std::vector<InputSpec> input_specs(Gate gate) {
  std::vector<InputSpec> s = qkv_specs(" (L2-normalised, or use_qk_l2norm)");
  s.push_back(InputSpec::required_input("beta", {"B", "T", "H"}, "writing strengths in (0, 1)"));
  if (gate == Gate::scalar) s.push_back(InputSpec::required_input("g", {"B", "T", "H"}, "log gates (<= 0)"));
  if (gate == Gate::per_key)
    s.push_back(InputSpec::required_input("g", {"B", "T", "H", "K"}, "log gates per key dimension (<= 0)"));
  s.push_back(initial_state_spec());
  return s;
}

Mechanism family_mechanism(const Member& member) {
  Mechanism m;
  m.name = member.name;
  m.description = member.description;
  m.equation = member.equation;
  m.inputs = input_specs(member.gate);
  m.options = options_schema<DeltaRuleOptions>();
  const Primitive *recurrent = &recurrent_primitive(member.gate), *chunk = member.chunk;
  m.forms = {{Form::reference, member.reference},
             {Form::recurrent, [recurrent](const Call& c) { return run_delta_primitive(*recurrent, c); }},
             {Form::chunk, [chunk](const Call& c) { return run_delta_primitive(*chunk, c); }}};
  // Keys and queries of norm 1 and β = sigmoid(randn) keep the recurrence a contraction.
  m.make_inputs = [gate = member.gate](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype, /*unit_norm_qk=*/true);
    d.insert("beta", sigmoid(randn({s.B, s.T, s.H}, gen, dtype)));
    if (gate == Gate::scalar) d.insert("g", random_log_gates({s.B, s.T, s.H}, gen, dtype));
    if (gate == Gate::per_key) d.insert("g", random_log_gates({s.B, s.T, s.H, s.K}, gen, dtype));
    return d;
  };
  m.flops = delta_rule_flops;
  return m;
}

MechanismOutputs delta_reference(const Call& c, const Tensor& log_gates) {
  const bool norm = l2norm(c);
  Tensor q = norm ? l2_normalize(c["q"], -1, kL2NormEps) : c["q"];
  Tensor k = norm ? l2_normalize(c["k"], -1, kL2NormEps) : c["k"];
  Tensor qf = mul(token_rows(q), c.scale), kf = token_rows(k), vf = token_rows(c["v"]);  // [B·T, H, ·]
  Tensor bf = reshape(c["beta"], {c.layout.B * c.layout.T, c.layout.H, 1});              // [B·T, H, 1]
  return reference_scan(c, [&](int64_t t, const Tensor& S0) {
    Tensor S = log_gates.defined() ? mul(S0, exp(select(log_gates, 0, t))) : S0;    // S' [H, K, V]
    Tensor kt = unsqueeze(select(kf, 0, t), 2);                                     // [H, K, 1]
    Tensor u = mul(select(bf, 0, t), sub(select(vf, 0, t), sum(mul(S, kt), {1})));  // β (v − S'ᵀk) [H, V]
    S = add(S, mul(kt, unsqueeze(u, 1)));
    Tensor o = sum(mul(S, unsqueeze(select(qf, 0, t), 2)), {1});  // [H, V]
    return std::make_pair(S, o);
  });
}

MechanismOutputs run_delta_primitive(const Primitive& p, const Call& c) {
  if (!l2norm(c)) return run_primitive(p, c);
  TensorDict in = c.inputs;
  in.set("q", l2_normalize(c["q"], -1, kL2NormEps));
  in.set("k", l2_normalize(c["k"], -1, kL2NormEps));
  return run_primitive(p, c.form, in, c.forward_options());
}

KernelOutputs empty_outputs(const KernelArgs& a) {
  const SequenceLayout& L = a.L;
  return {Tensor::empty({L.B, L.T, L.H, L.V}, a.dtype), Tensor::empty({L.N, L.H, L.K, L.V}, a.dtype)};
}

TensorDict empty_gradients(const KernelArgs& a) {
  TensorDict g;
  for (const char* name : {"q", "k", "v", "beta", "g", "initial_state"})
    if (a.has(name)) g.insert(name, Tensor::empty(a[name].shape(), a.dtype));
  return g;
}

}  // namespace lnx::kernels::delta_detail
