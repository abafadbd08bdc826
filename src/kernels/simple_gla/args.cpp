#include "kernels/simple_gla/args.h"

#include "tensor/autograd.h"
#include "tensor/cpu/loops.h"

namespace lnx::kernels::simple_gla_detail {

Args parse_args(const std::string& op, const TensorDict& in, const MechanismOptions& opt, bool value_maps) {
  const Tensor q = optional_input(in, "q"), k = optional_input(in, "k"), v = optional_input(in, "v");
  Args a;
  a.L = check_qkv(op, q, k, v, opt.cu_seqlens);
  const Tensor g = optional_input(in, "g"), gamma = optional_input(in, "g_gamma"),
               h0 = optional_input(in, "initial_state");
  if (g.defined()) check_shape(op, "g", g, {a.L.B, a.L.T, a.L.H}, q.dtype());
  if (gamma.defined()) check_shape(op, "g_gamma", gamma, {a.L.H}, q.dtype());
  check_initial_state(op, h0, a.L, q.dtype());
  const Tensor v_scale = optional_input(in, "v_scale"), skip = optional_input(in, "skip");
  LNX_CHECK(value_maps || (!v_scale.defined() && !skip.defined()), ValueError,
            "[{}] v_scale and skip are taken by the chunk form only", op);
  if (v_scale.defined()) check_shape(op, "v_scale", v_scale, {a.L.B, a.L.T, a.L.H}, q.dtype());
  if (skip.defined()) check_shape(op, "skip", skip, {a.L.H}, q.dtype());
  auto prep = [](const Tensor& x) { return x.defined() ? x.detach().contiguous() : Tensor(); };
  a.q = prep(q), a.k = prep(k), a.v = prep(v), a.g = prep(g), a.gamma = prep(gamma), a.h0 = prep(h0);
  a.v_scale = prep(v_scale), a.skip = prep(skip);
  a.scale = resolve_scale(opt, a.L.K);
  a.output_final_state = opt.output_final_state;
  return a;
}

namespace {

// The differentiable inputs present, in a fixed order; which[i] names input i
// (0 q, 1 k, 2 v, 3 g, 4 g_gamma, 5 initial_state, 6 v_scale, 7 skip).
TensorList differentiable_inputs(const TensorDict& in, std::vector<int>* which) {
  TensorList inputs;
  const char* names[] = {"q", "k", "v", "g", "g_gamma", "initial_state", "v_scale", "skip"};
  for (int i = 0; i < 8; ++i)
    if (in.contains(names[i])) {
      inputs.push_back(in.at(names[i]));
      if (which) which->push_back(i);
    }
  return inputs;
}

}  // namespace

bool wants_grad(const TensorDict& in) { return needs_grad(differentiable_inputs(in, nullptr)); }

MechanismOutputs run_and_record(const std::string& op, const TensorDict& in, const Args& args,
                                const std::pair<Tensor, Tensor>& outputs, Backward backward) {
  MechanismOutputs out;
  out.o = outputs.first;
  if (args.output_final_state) out.final_state = outputs.second;
  std::vector<int> which;
  const TensorList inputs = differentiable_inputs(in, &which);
  if (!needs_grad(inputs)) return out;
  std::vector<Tensor*> outs{&out.o};
  if (args.output_final_state) outs.push_back(&out.final_state);
  record(op, inputs, outs, [args, which, backward](const VjpContext& c) -> TensorList {
    Tensor d_o = c.grad(0).contiguous();
    Tensor d_final = args.output_final_state ? c.grad(1).contiguous() : Tensor();
    Grads g = backward(args, d_o, d_final);
    TensorList result;
    for (int w : which) {
      switch (w) {
        case 0: result.push_back(g.dq); break;
        case 1: result.push_back(g.dk); break;
        case 2: result.push_back(g.dv); break;
        case 3: result.push_back(g.dg); break;
        case 4: result.push_back(g.dgamma); break;
        case 5: result.push_back(g.dh0); break;
        case 6: result.push_back(g.dv_scale); break;
        default: result.push_back(g.dskip); break;
      }
    }
    return result;
  });
  return out;
}

void store_gate_grads(const Args& a, const std::vector<double>& dgt, Grads& grads) {
  const int64_t H = a.L.H, rows = a.L.B * a.L.T;
  dispatch_float(a.q.dtype(), "simple_gla", [&]<typename T>() {
    if (a.g.defined()) {
      grads.dg = Tensor::empty(a.g.shape(), a.g.dtype());
      T* p = grads.dg.data<T>();
      for (int64_t i = 0; i < rows * H; ++i) p[i] = static_cast<T>(dgt[i]);
    }
    if (a.gamma.defined()) {
      std::vector<double> sum(static_cast<size_t>(H), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t h = 0; h < H; ++h) sum[h] += dgt[r * H + h];
      grads.dgamma = Tensor::empty({H}, a.gamma.dtype());
      for (int64_t h = 0; h < H; ++h) grads.dgamma.data<T>()[h] = static_cast<T>(sum[h]);
    }
  });
}

}  // namespace lnx::kernels::simple_gla_detail
