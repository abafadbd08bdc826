// gla: gated linear attention with a per-key-dimension gate (Yang et al., 2023).
//   S_t = Diag(exp(g_t)) S_{t−1} + k_t v_tᵀ,   o_t = S_tᵀ (scale · q_t)
// q, k, g [B,T,H,K] (g: log gates ≤ 0), v [B,T,H,V], states [N,H,K,V].
// Declaration, the reference form, and the fast forms (the recurrent and chunk primitives of
// recurrent.cpp and chunk.cpp).
#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/common/reference_scan.h"
#include "kernels/common/registration.h"
#include "kernels/gla/gla_internal.h"

namespace lnx::kernels {

namespace gla_detail {

std::vector<InputSpec> input_specs() {
  std::vector<InputSpec> s = qkv_specs();
  s.push_back(InputSpec::required_input("g", {"B", "T", "H", "K"}, "log gates (<= 0), one per key dim"));
  s.push_back(initial_state_spec());
  return s;
}

}  // namespace gla_detail

namespace {

// The definition, token by token with tensor ops (autodiff gives its gradients). Run in f64
// it is what the fast forms are tested against.
MechanismOutputs reference(const Call& c) {
  Tensor qf = mul(token_rows(c["q"]), c.scale), kf = token_rows(c["k"]), vf = token_rows(c["v"]);
  Tensor af = exp(token_rows(c["g"]));  // [B·T, H, K]
  return reference_scan(c, [&](int64_t t, const Tensor& S0) {
    Tensor S = mul(S0, unsqueeze(select(af, 0, t), 2));  // [H, K, V] ⊙ [H, K, 1]
    S = add(S, mul(unsqueeze(select(kf, 0, t), 2), unsqueeze(select(vf, 0, t), 1)));
    Tensor o = sum(mul(S, unsqueeze(select(qf, 0, t), 2)), {1});  // [H, V]
    return std::make_pair(S, o);
  });
}

MechanismOutputs recurrent(const Call& c) { return run_primitive(gla_detail::recurrent_primitive(), c); }
MechanismOutputs chunk(const Call& c) { return run_primitive(gla_detail::chunk_primitive(), c); }

}  // namespace

Mechanism gla_mechanism() {
  Mechanism m;
  m.name = "gla";
  m.description = "gated linear attention with a per-key-dim gate (Yang et al., 2023)";
  m.equation = "S_t = Diag(exp(g_t)) S_{t-1} + k_t v_t^T,  o_t = S_t^T (scale q_t)";
  m.inputs = gla_detail::input_specs();
  m.forms = {{Form::reference, reference}, {Form::recurrent, recurrent}, {Form::chunk, chunk}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype);
    d.insert("g", random_log_gates({s.B, s.T, s.H, s.K}, gen, dtype));
    return d;
  };
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels
