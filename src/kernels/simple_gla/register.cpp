#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/common/registration.h"
#include "kernels/simple_gla/simple_gla.h"

namespace lnx::kernels {

Mechanism simple_gla_mechanism() {
  Mechanism m;
  m.name = "simple_gla";
  m.description = "gated linear attention, scalar gate per head: S_t = exp(g_t) S_{t-1} + k_t v_t^T";
  m.inputs = qkv_specs();
  m.inputs.insert(m.inputs.end(), {{"g", "[B,T,H]", false, "log gates (<= 0)"},
                                   {"g_gamma", "[H]", false, "fixed per-head log decay"},
                                   initial_state_spec()});
  m.forms = {{Form::reference, simple_gla_reference},
             {Form::recurrent, simple_gla_recurrent},
             {Form::chunk, simple_gla_chunk}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype);
    d.insert("g", random_log_gates({s.B, s.T, s.H}, gen, dtype));
    return d;
  };
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels

namespace lnx::kernels {

// retention (RetNet): simple_gla with the fixed decays g_gamma_h = log(1 − 2^(−5−h)).
Mechanism retention_mechanism() {
  Mechanism m;
  m.name = "retention";
  m.description = "RetNet retention: simple_gla with fixed per-head decay log(1 - 2^(-5-h))";
  m.inputs = qkv_specs();
  m.inputs.push_back(initial_state_spec());
  auto with_decays = [](MechanismFn f) -> MechanismFn {
    return [f](const TensorDict& in, const MechanismOptions& o) {
      TensorDict d = in;
      const Tensor& q = in.at("q");
      LNX_CHECK(q.dim() == 4, ShapeError, "[retention] q is {}: expected [B,T,H,K]", shape_str(q.shape()));
      d.insert("g_gamma", retention_log_decays(q.size(2), q.dtype()));
      return f(d, o);
    };
  };
  m.forms = {{Form::reference, with_decays(simple_gla_reference)},
             {Form::recurrent, with_decays(simple_gla_recurrent)},
             {Form::chunk, with_decays(simple_gla_chunk)}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) { return random_qkv(s, gen, dtype); };
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels
