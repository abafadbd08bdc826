#include "kernels/gla/args.h"

#include "tensor/autograd.h"

namespace lnx::kernels::gla_detail {

Args parse_args(const std::string& op, const TensorDict& in, const MechanismOptions& opt) {
  Args a;
  const Tensor &q = in.at("q"), &k = in.at("k"), &v = in.at("v");
  a.L = check_qkv(op, q, k, v, opt.cu_seqlens);
  LNX_CHECK(in.contains("g"), ValueError, "[{}] missing required input 'g' [B,T,H,K]", op);
  const Tensor& g = in.at("g");
  check_shape(op, "g", g, {a.L.B, a.L.T, a.L.H, a.L.K}, q.dtype());
  Tensor h0 = optional_input(in, "initial_state");
  check_initial_state(op, h0, a.L, q.dtype());
  a.q = q.detach().contiguous();
  a.k = k.detach().contiguous();
  a.v = v.detach().contiguous();
  a.g = g.detach().contiguous();
  if (h0.defined()) a.h0 = h0.detach().contiguous();
  a.scale = resolve_scale(opt, a.L.K);
  a.output_final_state = opt.output_final_state;
  return a;
}

namespace {
TensorList input_list(const TensorDict& in) {
  return {in.at("q"), in.at("k"), in.at("v"), in.at("g"), optional_input(in, "initial_state")};
}
}  // namespace

bool wants_grad(const TensorDict& in) { return needs_grad(input_list(in)); }

MechanismOutputs run_and_record(const std::string& op, const TensorDict& in, const Args& args,
                                Tensor o, Tensor final_state, Backward backward) {
  MechanismOutputs out;
  out.o = std::move(o);
  if (args.output_final_state) out.final_state = std::move(final_state);
  const TensorList inputs = input_list(in);
  if (!needs_grad(inputs)) return out;
  const bool with_final = args.output_final_state;
  std::vector<Tensor*> outputs{&out.o};
  if (with_final) outputs.push_back(&out.final_state);
  record(op, inputs, outputs, [backward = std::move(backward), with_final](const VjpContext& c) -> TensorList {
    Tensor d_o = c.grad(0).contiguous();
    Tensor d_final = with_final ? c.grad(1).contiguous() : Tensor();
    Grads g = backward(d_o, d_final);
    return {g.dq, g.dk, g.dv, g.dg, g.dh0};
  });
  return out;
}

}  // namespace lnx::kernels::gla_detail
