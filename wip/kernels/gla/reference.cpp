// The definition of gla: the recurrence token by token, written with tensor ops (so autodiff
// gives its gradients). Run in f64 it is what the fast forms are tested against.
#include "kernels/common/reference_scan.h"
#include "kernels/gla/gla.h"

namespace lnx::kernels {

MechanismOutputs gla_reference(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "gla_reference";
  const Tensor &q = in.at("q"), &k = in.at("k"), &v = in.at("v");
  const Tensor h0 = optional_input(in, "initial_state");
  SequenceLayout L = check_qkv(op, q, k, v, opt.cu_seqlens);
  LNX_CHECK(in.contains("g"), ValueError, "[{}] missing required input 'g' [B,T,H,K]", op);
  const Tensor& g = in.at("g");
  check_shape(op, "g", g, {L.B, L.T, L.H, L.K}, q.dtype());
  check_initial_state(op, h0, L, q.dtype());
  const double scale = resolve_scale(opt, L.K);

  // Flat token rows: [B·T, H, ·].
  Tensor qf = mul(reshape(q, {L.B * L.T, L.H, L.K}), scale);
  Tensor kf = reshape(k, {L.B * L.T, L.H, L.K});
  Tensor vf = reshape(v, {L.B * L.T, L.H, L.V});
  Tensor af = exp(reshape(g, {L.B * L.T, L.H, L.K}));

  return reference_scan(L, h0, q.dtype(), opt.output_final_state, [&](int64_t t, const Tensor& S0) {
    Tensor S = mul(S0, unsqueeze(select(af, 0, t), 2));  // [H, K, V] ⊙ [H, K, 1]
    S = add(S, mul(unsqueeze(select(kf, 0, t), 2), unsqueeze(select(vf, 0, t), 1)));
    Tensor o = sum(mul(S, unsqueeze(select(qf, 0, t), 2)), {1});  // [H, V]
    return std::make_pair(S, o);
  });
}

}  // namespace lnx::kernels
