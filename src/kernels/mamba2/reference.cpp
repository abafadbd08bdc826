// The definition of mamba2, token by token with tensor ops (autodiff gives its gradients),
// and the input checks every form shares.
#include "kernels/common/reference_scan.h"
#include "kernels/mamba2/inputs.h"
#include "kernels/mamba2/mamba2.h"

namespace lnx::kernels {

namespace mamba2_detail {

Inputs check_inputs(const std::string& op, const TensorDict& in, const MechanismOptions& opt) {
  Inputs a;
  a.x = optional_input(in, "x"), a.dt = optional_input(in, "dt"), a.A_log = optional_input(in, "A_log");
  a.dt_bias = optional_input(in, "dt_bias"), a.B = optional_input(in, "B"), a.C = optional_input(in, "C");
  a.D = optional_input(in, "D"), a.h0 = optional_input(in, "initial_state");
  LNX_CHECK(a.x.defined() && a.B.defined() && a.C.defined(), ValueError, "[{}] x, B and C are required", op);
  // C plays q, B plays k and x plays v; messages name them so.
  a.L = check_qkv(op + " (q = C, k = B, v = x)", a.C, a.B, a.x, opt.cu_seqlens);
  const DType dtype = a.x.dtype();
  const int64_t H = a.L.H;
  check_shape(op, "dt", a.dt, {a.L.B, a.L.T, H}, dtype);
  check_shape(op, "A_log", a.A_log, {H}, dtype);
  if (a.dt_bias.defined()) check_shape(op, "dt_bias", a.dt_bias, {H}, dtype);
  if (a.D.defined()) check_shape(op, "D", a.D, {H}, dtype);
  check_initial_state(op, a.h0, a.L, dtype);
  a.scale = opt.scale ? *opt.scale : 1.0;
  return a;
}

}  // namespace mamba2_detail

using namespace mamba2_detail;

MechanismOutputs mamba2_reference(const TensorDict& in, const MechanismOptions& opt) {
  const Inputs a = check_inputs("mamba2_reference", in, opt);
  const SequenceLayout& L = a.L;
  const int64_t rows = L.B * L.T, H = L.H;
  Tensor delta = softplus(a.dt_bias.defined() ? add(a.dt, a.dt_bias) : a.dt);  // [B,T,H]
  Tensor deltaf = reshape(delta, {rows, H});
  Tensor A = neg(exp(a.A_log));  // [H]
  Tensor xf = reshape(a.x, {rows, H, L.V});
  Tensor Bf = reshape(a.B, {rows, H, L.K});
  Tensor Cf = mul(reshape(a.C, {rows, H, L.K}), a.scale);
  Tensor Dcol = a.D.defined() ? reshape(a.D, {H, 1}) : Tensor();
  return reference_scan(L, a.h0, a.x.dtype(), opt.output_final_state, [&](int64_t r, const Tensor& S0) {
    Tensor d = select(deltaf, 0, r);  // [H]
    Tensor xr = select(xf, 0, r);     // [H, P]
    Tensor S = mul(S0, reshape(exp(mul(d, A)), {H, 1, 1}));
    S = add(S, mul(reshape(d, {H, 1, 1}), mul(unsqueeze(select(Bf, 0, r), 2), unsqueeze(xr, 1))));
    Tensor y = sum(mul(S, unsqueeze(select(Cf, 0, r), 2)), {1});  // [H, P]
    if (Dcol.defined()) y = add(y, mul(Dcol, xr));
    return std::make_pair(S, y);
  });
}

}  // namespace lnx::kernels
