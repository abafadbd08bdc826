#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/common/registration.h"
#include "kernels/kda/kda.h"

namespace lnx::kernels {

namespace {
// Useful FLOPs of the forward per token and head. Recurrent: the per-row decay, Sᵀk, the
// rank-one update and the read (7KV). Chunk (C tokens): the state products W S0, Q S0 and
// Kᵀ U (2KV each), the pairwise gated products M and P (2·C·K, half masked, counted as done),
// T·diag(β)K (2CK), T·diag(β)V and P U (2CV each), the triangular solve (C²/3) and the state
// decay (KV/C).
double kda_flops(const ProblemSize& s, Form form, int64_t chunk) {
  const double tokens = static_cast<double>(s.B) * s.T * s.H;
  double per = 7.0 * s.K * s.V;
  if (form == Form::chunk)
    per = 6.0 * s.K * s.V + 6.0 * chunk * s.K + 4.0 * chunk * s.V + chunk * chunk / 3.0 +
          static_cast<double>(s.K) * s.V / chunk;
  return tokens * per;
}
}  // namespace

Mechanism kda_mechanism() {
  Mechanism m;
  m.name = "kda";
  m.description =
      "Kimi Delta Attention: S' = Diag(exp(g_t)) S_{t-1}, S_t = S' + beta_t k_t (v_t - S'^T k_t)^T "
      "(q, k L2-normalised)";
  m.inputs = qkv_specs(" (L2-normalised, or use_qk_l2norm)");
  m.inputs.insert(m.inputs.end(), {{"beta", "[B,T,H]", true, "writing strengths in (0, 1)"},
                                   {"g", "[B,T,H,K]", true, "log gates per key dimension (<= 0)"},
                                   initial_state_spec()});
  m.options = {"use_qk_l2norm"};
  m.forms = {
      {Form::reference, kda_reference}, {Form::recurrent, kda_recurrent}, {Form::chunk, kda_chunk}};
  // Keys and queries of norm 1 and β = sigmoid(randn) keep the recurrence a contraction.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype, /*unit_norm_qk=*/true);
    d.insert("beta", sigmoid(randn({s.B, s.T, s.H}, gen, dtype)));
    d.insert("g", random_log_gates({s.B, s.T, s.H, s.K}, gen, dtype));
    return d;
  };
  m.flops = kda_flops;
  return m;
}

}  // namespace lnx::kernels
