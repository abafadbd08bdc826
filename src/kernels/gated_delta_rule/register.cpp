#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/gated_delta_rule/gated_delta_rule.h"

namespace lnx::kernels {

namespace {
// Useful FLOPs of the forward per token and head. Recurrent: Sᵀk, the rank-one update and the
// read, 2KV each. Chunk (C tokens): the three state products W S0, Q S0 and Kᵀ U (2KV each),
// the intra-chunk products K Kᵀ, T·diag(β)K, Q Kᵀ (2CK each) and T·diag(β)V, P U (2CV each),
// and the triangular solve (C²/3); masked halves are counted as done.
double gated_delta_rule_flops(const ProblemSize& s, Form form, int64_t chunk) {
  const double tokens = static_cast<double>(s.B) * s.T * s.H;
  double per = 6.0 * s.K * s.V;
  if (form == Form::chunk) per += 6.0 * chunk * s.K + 4.0 * chunk * s.V + chunk * chunk / 3.0;
  return tokens * per;
}
}  // namespace

Mechanism gated_delta_rule_mechanism() {
  Mechanism m;
  m.name = "gated_delta_rule";
  m.description =
      "Gated DeltaNet: S' = exp(g_t) S_{t-1}, S_t = S' + beta_t k_t (v_t - S'^T k_t)^T (q, k "
      "L2-normalised)";
  m.inputs = {{"q", "[B,T,H,K]", true, "queries (L2-normalised, or use_qk_l2norm)"},
              {"k", "[B,T,H,K]", true, "keys (L2-normalised, or use_qk_l2norm)"},
              {"v", "[B,T,H,V]", true, "values"},
              {"beta", "[B,T,H]", true, "writing strengths in (0, 1)"},
              {"g", "[B,T,H]", true, "log gates (<= 0)"},
              {"initial_state", "[N,H,K,V]", false, "state before the first token"}};
  m.options = {"use_qk_l2norm"};
  m.forms = {{Form::reference, gated_delta_rule_reference},
             {Form::recurrent, gated_delta_rule_recurrent},
             {Form::chunk, gated_delta_rule_chunk}};
  // Keys and queries of norm 1 and β = sigmoid(randn) keep the recurrence a contraction.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d;
    d.insert("q", l2_normalize(randn({s.B, s.T, s.H, s.K}, gen, dtype)));
    d.insert("k", l2_normalize(randn({s.B, s.T, s.H, s.K}, gen, dtype)));
    d.insert("v", randn({s.B, s.T, s.H, s.V}, gen, dtype));
    d.insert("beta", sigmoid(randn({s.B, s.T, s.H}, gen, dtype)));
    d.insert("g", random_log_gates({s.B, s.T, s.H}, gen, dtype));
    return d;
  };
  m.flops = gated_delta_rule_flops;
  return m;
}

}  // namespace lnx::kernels
