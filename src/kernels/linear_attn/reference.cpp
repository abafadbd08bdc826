// The definition of linear_attn, token by token with tensor ops: the state S and, with
// normalize, the running key sum z (reset at the start of every sequence).
#include "kernels/common/layout.h"
#include "kernels/linear_attn/linear_attn.h"

namespace lnx::kernels {

MechanismOutputs linear_attn_reference(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "linear_attn_reference";
  const Tensor q = optional_input(in, "q"), k = optional_input(in, "k"), v = optional_input(in, "v"),
               h0 = optional_input(in, "initial_state");
  SequenceLayout L = check_qkv(op, q, k, v, opt.cu_seqlens);
  check_initial_state(op, h0, L, q.dtype());
  const double scale = resolve_scale(opt, L.K);
  Tensor qf = mul(reshape(q, {L.B * L.T, L.H, L.K}), scale);
  Tensor kf = reshape(k, {L.B * L.T, L.H, L.K});
  Tensor vf = reshape(v, {L.B * L.T, L.H, L.V});
  TensorList outputs, finals;
  for (int64_t n = 0; n < L.N; ++n) {
    Tensor S = h0.defined() ? select(h0, 0, n) : zeros({L.H, L.K, L.V}, q.dtype());
    Tensor z = zeros({L.H, L.K}, q.dtype());
    for (int64_t r = L.offsets[n]; r < L.offsets[n + 1]; ++r) {
      Tensor qr = select(qf, 0, r), kr = select(kf, 0, r);
      S = add(S, mul(unsqueeze(kr, 2), unsqueeze(select(vf, 0, r), 1)));
      Tensor o = sum(mul(S, unsqueeze(qr, 2)), {1});  // [H, V]
      if (opt.normalize) {
        z = add(z, kr);
        o = div(o, add(sum(mul(qr, z), {1}, /*keepdim=*/true), 1e-10));
      }
      outputs.push_back(unsqueeze(o, 0));
    }
    finals.push_back(unsqueeze(S, 0));
  }
  MechanismOutputs out;
  out.o = outputs.empty() ? zeros({L.B, L.T, L.H, L.V}, q.dtype())
                          : reshape(concat(outputs, 0), {L.B, L.T, L.H, L.V});
  if (opt.output_final_state) out.final_state = concat(finals, 0);
  return out;
}

}  // namespace lnx::kernels
