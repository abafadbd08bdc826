// The definition of kda: the recurrence token by token with tensor ops (so autodiff gives its
// gradients). Run in f64 it is what the fast forms are tested against.
#include "kernels/common/delta_family.h"
#include "kernels/common/reference_scan.h"
#include "kernels/kda/kda.h"

namespace lnx::kernels {

MechanismOutputs kda_reference(const TensorDict& in, const MechanismOptions& opt) {
  const DeltaArgs a = delta_args("kda_reference", in, opt, DeltaGate::per_key);
  const SequenceLayout& L = a.L;
  // Flat token rows: [B·T, H, ·].
  Tensor qf = mul(reshape(a.q, {L.B * L.T, L.H, L.K}), a.scale);
  Tensor kf = reshape(a.k, {L.B * L.T, L.H, L.K});
  Tensor vf = reshape(a.v, {L.B * L.T, L.H, L.V});
  Tensor bf = reshape(a.beta, {L.B * L.T, L.H, 1});
  Tensor gf = reshape(a.g, {L.B * L.T, L.H, L.K, 1});
  return reference_scan(L, a.h0, a.q.dtype(), opt.output_final_state, [&](int64_t t, const Tensor& S0) {
    Tensor S = mul(S0, exp(select(gf, 0, t)));                          // S' [H, K, V]
    Tensor k = unsqueeze(select(kf, 0, t), 2);                          // [H, K, 1]
    Tensor kv = sum(mul(S, k), {1});                                    // S'ᵀk [H, V]
    Tensor u = mul(select(bf, 0, t), sub(select(vf, 0, t), kv));       // [H, V]
    S = add(S, mul(k, unsqueeze(u, 1)));
    Tensor o = sum(mul(S, unsqueeze(select(qf, 0, t), 2)), {1});       // [H, V]
    return std::make_pair(S, o);
  });
}

}  // namespace lnx::kernels
