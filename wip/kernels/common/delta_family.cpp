#include "kernels/common/delta_family.h"

#include "tensor/autograd.h"

namespace lnx::kernels {

DeltaArgs delta_args(const std::string& op, const TensorDict& in, const MechanismOptions& opt,
                     DeltaGate gate) {
  DeltaArgs a;
  a.op = op;
  a.q = optional_input(in, "q");
  a.k = optional_input(in, "k");
  a.v = optional_input(in, "v");
  a.L = check_qkv(op, a.q, a.k, a.v, opt.cu_seqlens);
  const SequenceLayout& L = a.L;
  a.beta = optional_input(in, "beta");
  check_shape(op, "beta", a.beta, {L.B, L.T, L.H}, a.q.dtype());
  if (gate != DeltaGate::none) {
    a.g = optional_input(in, "g");
    Shape gs{L.B, L.T, L.H};
    if (gate == DeltaGate::per_key) gs.push_back(L.K);
    check_shape(op, "g", a.g, gs, a.q.dtype());
  }
  a.h0 = optional_input(in, "initial_state");
  check_initial_state(op, a.h0, L, a.q.dtype());
  a.scale = resolve_scale(opt, L.K);
  if (opt.use_qk_l2norm) {
    a.q = l2_normalize(a.q, -1, 1e-6);
    a.k = l2_normalize(a.k, -1, 1e-6);
  }
  return a;
}

MechanismOutputs run_delta_kernel(const DeltaArgs& a, const MechanismOptions& opt,
                                  const DeltaKernel& kernel) {
  const TensorList inputs{a.q, a.k, a.v, a.beta, a.g, a.h0};
  const bool keep = needs_grad(inputs);
  auto plain = [](const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); };
  DeltaArgs data = a;
  data.q = plain(a.q), data.k = plain(a.k), data.v = plain(a.v), data.beta = plain(a.beta);
  data.g = plain(a.g), data.h0 = plain(a.h0);
  Tensor o, final_state;
  Tensor saved = kernel.forward(data, o, final_state, keep);
  MechanismOutputs out;
  out.o = o;
  if (opt.output_final_state) out.final_state = final_state;
  if (keep) {
    std::vector<Tensor*> outputs{&out.o};
    if (opt.output_final_state) outputs.push_back(&out.final_state);
    const bool has_final = opt.output_final_state;
    record(a.op, inputs, outputs,
           [data, saved, kernel, has_final](const VjpContext& c) -> TensorList {
             Tensor d_o = c.grad(0).contiguous();
             Tensor d_final = has_final ? c.grad(1).contiguous() : Tensor();
             DeltaGrads gr = kernel.backward(data, saved, d_o, d_final);
             return {gr.dq, gr.dk, gr.dv, gr.dbeta, gr.dg, gr.dh0};
           });
  }
  return out;
}

}  // namespace lnx::kernels
