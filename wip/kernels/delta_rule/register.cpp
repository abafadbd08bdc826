#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/common/registration.h"
#include "kernels/delta_rule/delta_rule.h"

namespace lnx::kernels {

Mechanism delta_rule_mechanism() {
  Mechanism m;
  m.name = "delta_rule";
  m.description =
      "DeltaNet: u_t = beta_t (v_t - S_{t-1}^T k_t), S_t = S_{t-1} + k_t u_t^T (q, k "
      "L2-normalised)";
  m.inputs = qkv_specs(" (L2-normalised, or use_qk_l2norm)");
  m.inputs.insert(m.inputs.end(), {{"beta", "[B,T,H]", true, "writing strengths in (0, 1)"},
                                   initial_state_spec()});
  m.options = {"use_qk_l2norm"};
  m.forms = {{Form::reference, delta_rule_reference},
             {Form::recurrent, delta_rule_recurrent},
             {Form::chunk, delta_rule_chunk}};
  // Keys and queries of norm 1 and β = sigmoid(randn) keep the recurrence a contraction.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype, /*unit_norm_qk=*/true);
    d.insert("beta", sigmoid(randn({s.B, s.T, s.H}, gen, dtype)));
    return d;
  };
  m.flops = delta_rule_flops;
  return m;
}

}  // namespace lnx::kernels
