// The definition of simple_gla: the recurrence token by token, written with tensor ops (so
// autodiff gives its gradients). Run in f64 it is what the fast forms are tested against.
#include "kernels/common/reference_scan.h"
#include "kernels/simple_gla/simple_gla.h"

namespace lnx::kernels {

MechanismOutputs simple_gla_reference(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "simple_gla_reference";
  const Tensor &q = in.at("q"), &k = in.at("k"), &v = in.at("v");
  const Tensor g = optional_input(in, "g"), g_gamma = optional_input(in, "g_gamma"),
               h0 = optional_input(in, "initial_state");
  SequenceLayout L = check_qkv(op, q, k, v, opt.cu_seqlens);
  if (g.defined()) check_shape(op, "g", g, {L.B, L.T, L.H}, q.dtype());
  if (g_gamma.defined()) check_shape(op, "g_gamma", g_gamma, {L.H}, q.dtype());
  check_initial_state(op, h0, L, q.dtype());
  const double scale = resolve_scale(opt, L.K);

  // Flat token rows: [B·T, H, ·].
  Tensor qf = mul(reshape(q, {L.B * L.T, L.H, L.K}), scale);
  Tensor kf = reshape(k, {L.B * L.T, L.H, L.K});
  Tensor vf = reshape(v, {L.B * L.T, L.H, L.V});
  Tensor gf = g.defined() ? reshape(g, {L.B * L.T, L.H}) : Tensor();
  Tensor decay_gamma = g_gamma.defined() ? reshape(exp(g_gamma), {L.H, 1, 1}) : Tensor();

  return reference_scan(L, h0, q.dtype(), opt.output_final_state, [&](int64_t t, const Tensor& S0) {
    Tensor S = S0;  // [H, K, V]
    if (gf.defined()) S = mul(S, reshape(exp(select(gf, 0, t)), {L.H, 1, 1}));
    if (decay_gamma.defined()) S = mul(S, decay_gamma);
    S = add(S, mul(unsqueeze(select(kf, 0, t), 2), unsqueeze(select(vf, 0, t), 1)));
    Tensor o = sum(mul(S, unsqueeze(select(qf, 0, t), 2)), {1});  // [H, V]
    return std::make_pair(S, o);
  });
}

Tensor retention_log_decays(int64_t H, DType dtype) {
  std::vector<double> g(H);
  for (int64_t h = 0; h < H; ++h) g[h] = std::log(1.0 - std::pow(2.0, -5.0 - static_cast<double>(h)));
  return from_vector<double>(g, {H}).to(dtype);
}

}  // namespace lnx::kernels
