// mamba2's fast forms: Δ = softplus(dt + dt_bias) and g = Δ·A with tensor ops, then simple_gla
// with q = C, k = B and value Δ·x. The chunk form hands x, Δ (v_scale) and D (skip) to
// simple_gla's chunk kernel, which applies them in its own loops (composed from tensor ops they
// cost the chunk forward ~40%: three passes over x-sized tensors); the recurrent form forms
// v = Δ·x and adds the D skip with tensor ops. Autodiff carries the gradients through the ops
// and simple_gla's hand-written vjps.
#include "kernels/mamba2/inputs.h"
#include "kernels/mamba2/mamba2.h"
#include "kernels/simple_gla/simple_gla.h"

namespace lnx::kernels {

using namespace mamba2_detail;

namespace {

MechanismOutputs mamba2_via(const std::string& op, const MechanismFn& form, const TensorDict& in,
                            const MechanismOptions& opt, bool fused_value_maps) {
  const Inputs a = check_inputs(op, in, opt);
  const int64_t H = a.L.H;
  Tensor delta = softplus(a.dt_bias.defined() ? add(a.dt, a.dt_bias) : a.dt);  // [B,T,H]
  TensorDict d;
  d.insert("q", a.C);
  d.insert("k", a.B);
  d.insert("g", mul(delta, neg(exp(a.A_log))));
  if (a.h0.defined()) d.insert("initial_state", a.h0);
  if (fused_value_maps) {
    d.insert("v", a.x);
    d.insert("v_scale", delta);
    if (a.D.defined()) d.insert("skip", a.D);
  } else {
    d.insert("v", mul(a.x, unsqueeze(delta, 3)));
  }
  MechanismOptions o = opt;
  o.scale = a.scale;
  MechanismOutputs out = form(d, o);
  if (!fused_value_maps && a.D.defined()) out.o = add(out.o, mul(a.x, reshape(a.D, {1, 1, H, 1})));
  return out;
}

}  // namespace

MechanismOutputs mamba2_recurrent(const TensorDict& in, const MechanismOptions& opt) {
  return mamba2_via("mamba2_recurrent", simple_gla_recurrent, in, opt, false);
}

MechanismOutputs mamba2_chunk(const TensorDict& in, const MechanismOptions& opt) {
  check_chunk_size("mamba2_chunk", opt.chunk_size);
  return mamba2_via("mamba2_chunk", simple_gla_chunk, in, opt, true);
}

}  // namespace lnx::kernels
