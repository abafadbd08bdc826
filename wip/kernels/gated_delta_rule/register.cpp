#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/common/registration.h"
#include "kernels/gated_delta_rule/gated_delta_rule.h"

namespace lnx::kernels {

Mechanism gated_delta_rule_mechanism() {
  Mechanism m;
  m.name = "gated_delta_rule";
  m.description =
      "Gated DeltaNet: S' = exp(g_t) S_{t-1}, S_t = S' + beta_t k_t (v_t - S'^T k_t)^T (q, k "
      "L2-normalised)";
  m.inputs = qkv_specs(" (L2-normalised, or use_qk_l2norm)");
  m.inputs.insert(m.inputs.end(), {{"beta", "[B,T,H]", true, "writing strengths in (0, 1)"},
                                   {"g", "[B,T,H]", true, "log gates (<= 0)"},
                                   initial_state_spec()});
  m.options = {"use_qk_l2norm"};
  m.forms = {{Form::reference, gated_delta_rule_reference},
             {Form::recurrent, gated_delta_rule_recurrent},
             {Form::chunk, gated_delta_rule_chunk}};
  // Keys and queries of norm 1 and β = sigmoid(randn) keep the recurrence a contraction.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype, /*unit_norm_qk=*/true);
    d.insert("beta", sigmoid(randn({s.B, s.T, s.H}, gen, dtype)));
    d.insert("g", random_log_gates({s.B, s.T, s.H}, gen, dtype));
    return d;
  };
  m.flops = delta_rule_flops;
  return m;
}

}  // namespace lnx::kernels
