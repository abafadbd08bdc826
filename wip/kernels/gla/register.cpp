#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/common/registration.h"
#include "kernels/gla/gla.h"

namespace lnx::kernels {

Mechanism gla_mechanism() {
  Mechanism m;
  m.name = "gla";
  m.description = "gated linear attention, per-key-dim gate: S_t = Diag(exp(g_t)) S_{t-1} + k_t v_t^T";
  m.inputs = qkv_specs();
  m.inputs.insert(m.inputs.end(), {{"g", "[B,T,H,K]", true, "log gates (<= 0), one per key dim"},
                                   initial_state_spec()});
  m.forms = {{Form::reference, gla_reference}, {Form::recurrent, gla_recurrent}, {Form::chunk, gla_chunk}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype);
    d.insert("g", random_log_gates({s.B, s.T, s.H, s.K}, gen, dtype));
    return d;
  };
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels
