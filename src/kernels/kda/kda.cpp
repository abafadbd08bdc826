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

namespace {

using namespace delta_detail;

// The definition: S' = Diag(exp(g_t)) S_{t−1} in the family's reference recurrence.
MechanismOutputs reference(const Call& c) {
  const SequenceLayout& L = c.layout;
  Tensor gf = reshape(c["g"], {L.B * L.T, L.H, L.K, 1});  // [B·T, H, K, 1]
  return delta_reference(c, [&](int64_t t, const Tensor& S) { return mul(S, exp(select(gf, 0, t))); });
}

MechanismOutputs chunk(const Call& c) { return run_delta_primitive(kda_detail::chunk_primitive(), c); }

// Useful FLOPs of the forward per token and head. Recurrent: the per-row decay, Sᵀk, the
// rank-one update and the read (7KV). Chunk (C tokens): the delta rule's, with the pairwise
// gated products M and P in place of K Kᵀ and Q Kᵀ (as many FLOPs), plus the state decay (KV/C).
double kda_flops(const ProblemSize& s, Form form, int64_t chunk) {
  if (form != Form::chunk) return static_cast<double>(s.B) * s.T * s.H * 7.0 * s.K * s.V;
  return delta_rule_flops(s, form, chunk) + static_cast<double>(s.B) * s.T * s.H * s.K * s.V / chunk;
}

}  // namespace

Mechanism kda_mechanism() {
  Mechanism m = family_declaration(Gate::per_key);
  m.name = "kda";
  m.description = "Kimi Delta Attention: the gated delta rule with a decay per key dimension (q, k L2-normalised)";
  m.equation = "S' = Diag(exp(g_t)) S_{t-1},  S_t = S' + beta_t k_t (v_t - S'^T k_t)^T,  o_t = S_t^T (scale q_t)";
  m.forms[Form::reference] = reference;
  m.forms[Form::chunk] = chunk;
  m.flops = kda_flops;
  return m;
}

}  // namespace lnx::kernels
