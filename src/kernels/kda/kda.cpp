// kda (Kimi Delta Attention): the gated delta rule with a decay per key dimension.
//   S' = Diag(exp(g_t)) S_{t−1},   S_t = S' + β_t k_t (v_t − S'ᵀ k_t)ᵀ,   o_t = S_tᵀ (scale · q_t)
// g [B,T,H,K] log gates (≤ 0), β [B,T,H] in (0, 1); q, k L2-normalised (or use_qk_l2norm).
// The recurrent form is the delta family's token loop; the chunk form (chunk.cpp) is the
// family's WY driver with per-key gates, formed only as exp of differences of cumulative log
// gates.
#include "kernels/builtin.h"
#include "kernels/common/registration.h"
#include "kernels/kda/kda_internal.h"

namespace lnx::kernels {

using namespace delta_detail;

namespace {

// Useful FLOPs of the forward per token and head. Recurrent: the per-row decay, Sᵀk, the
// rank-one update and the read (7KV). Chunk (C tokens): the delta rule's, with the pairwise
// gated products M and P in place of K Kᵀ and Q Kᵀ (as many FLOPs), plus the state decay (KV/C).
double kda_flops(const ProblemSize& s, Form form, int64_t chunk) {
  const double tokens = static_cast<double>(s.B) * s.T * s.H;
  if (form != Form::chunk) return tokens * 7.0 * s.K * s.V;
  return delta_rule_flops(s, form, chunk) + tokens * s.K * s.V / chunk;
}

}  // namespace

Mechanism kda_mechanism() {
  // The definition: the family's recurrence with S' = Diag(exp(g_t)) S_{t−1}, a gate per key row.
  FormFn reference = [](const Call& c) {
    return delta_reference(c, reshape(c["g"], {c.layout.B * c.layout.T, c.layout.H, c.layout.K, 1}));
  };
  Mechanism m = family_mechanism(
      {"kda", "Kimi Delta Attention: the gated delta rule with a decay per key dimension",
       "S' = Diag(exp(g_t)) S_{t-1},  S_t = S' + beta_t k_t (v_t - S'^T k_t)^T,  o_t = S_t^T (scale q_t)",
       Gate::per_key, reference, &kda_detail::chunk_primitive()});
  m.flops = kda_flops;
  return m;
}

}  // namespace lnx::kernels
