// linear_attn's fast forms: simple_gla's recurrent / chunk forms without a gate (their
// hand-written vjps give the gradients). With normalize, the normaliser scale·q_t·z_t is
// itself a linear attention with values 1 and no initial state, so the same form computes it
// (packed sequences included) and autodiff composes the division.
#include "kernels/common/layout.h"
#include "kernels/linear_attn/linear_attn.h"
#include "kernels/simple_gla/simple_gla.h"

namespace lnx::kernels {

namespace {

MechanismOutputs linear_attn_via(const std::string& op, const MechanismFn& form, const TensorDict& in,
                                 const MechanismOptions& opt) {
  const Tensor q = optional_input(in, "q"), k = optional_input(in, "k"), v = optional_input(in, "v");
  SequenceLayout L = check_qkv(op, q, k, v, opt.cu_seqlens);
  check_initial_state(op, optional_input(in, "initial_state"), L, q.dtype());
  TensorDict d;
  for (const char* name : {"q", "k", "v", "initial_state"})
    if (in.contains(name)) d.insert(name, in.at(name));
  MechanismOutputs out = form(d, opt);
  if (!opt.normalize) return out;
  TensorDict dz;
  dz.insert("q", q);
  dz.insert("k", k);
  dz.insert("v", ones({L.B, L.T, L.H, 1}, q.dtype()));
  MechanismOptions zopt = opt;
  zopt.scale = resolve_scale(opt, L.K);
  zopt.output_final_state = false;
  Tensor den = form(dz, zopt).o;  // scale·q_t·z_t, [B,T,H,1]
  out.o = div(out.o, add(den, 1e-10));
  return out;
}

}  // namespace

MechanismOutputs linear_attn_recurrent(const TensorDict& in, const MechanismOptions& opt) {
  return linear_attn_via("linear_attn_recurrent", simple_gla_recurrent, in, opt);
}

MechanismOutputs linear_attn_chunk(const TensorDict& in, const MechanismOptions& opt) {
  check_chunk_size("linear_attn_chunk", opt.chunk_size);
  return linear_attn_via("linear_attn_chunk", simple_gla_chunk, in, opt);
}

}  // namespace lnx::kernels
