// The definition of mamba, token by token with tensor ops (autodiff gives its gradients), and
// the input checks every form shares.
#include "kernels/common/reference_scan.h"
#include "kernels/mamba/mamba.h"
#include "kernels/mamba/scan.h"

namespace lnx::kernels {

namespace mamba_detail {

Inputs check_inputs(const std::string& op, const TensorDict& in, const MechanismOptions& opt) {
  Inputs a;
  a.x = optional_input(in, "x"), a.dt = optional_input(in, "dt"), a.A_log = optional_input(in, "A_log");
  a.dt_bias = optional_input(in, "dt_bias"), a.B = optional_input(in, "B"), a.C = optional_input(in, "C");
  a.D = optional_input(in, "D"), a.h0 = optional_input(in, "initial_state");
  LNX_CHECK(a.x.defined() && a.B.defined() && a.C.defined(), ValueError, "[{}] x, B and C are required", op);
  // C plays q, B plays k and x plays v; messages name them so.
  a.L = check_qkv(op + " (q = C, k = B, v = x)", a.C, a.B, a.x, opt.cu_seqlens);
  const DType dtype = a.x.dtype();
  const int64_t H = a.L.H, K = a.L.K, V = a.L.V;
  check_shape(op, "dt", a.dt, {a.L.B, a.L.T, H, V}, dtype);
  check_shape(op, "A_log", a.A_log, {H, V, K}, dtype);
  if (a.dt_bias.defined()) check_shape(op, "dt_bias", a.dt_bias, {H, V}, dtype);
  if (a.D.defined()) check_shape(op, "D", a.D, {H, V}, dtype);
  check_initial_state(op, a.h0, a.L, dtype);
  a.scale = opt.scale ? *opt.scale : 1.0;
  return a;
}

}  // namespace mamba_detail

using namespace mamba_detail;

MechanismOutputs mamba_reference(const TensorDict& in, const MechanismOptions& opt) {
  const Inputs a = check_inputs("mamba_reference", in, opt);
  const SequenceLayout& L = a.L;
  const int64_t rows = L.B * L.T, H = L.H, K = L.K, V = L.V;
  Tensor delta = softplus(a.dt_bias.defined() ? add(a.dt, reshape(a.dt_bias, {1, 1, H, V})) : a.dt);
  Tensor deltaf = reshape(delta, {rows, H, V});
  Tensor At = transpose(neg(exp(a.A_log)), 1, 2);  // [H, K, V]
  Tensor xf = reshape(a.x, {rows, H, V});
  Tensor Bf = reshape(a.B, {rows, H, K});
  Tensor Cf = mul(reshape(a.C, {rows, H, K}), a.scale);
  return reference_scan(L, a.h0, a.x.dtype(), opt.output_final_state, [&](int64_t r, const Tensor& S0) {
    Tensor d = select(deltaf, 0, r);  // [H, V]
    Tensor xr = select(xf, 0, r);     // [H, V]
    Tensor S = mul(S0, exp(mul(unsqueeze(d, 1), At)));  // decays exp(Δ[d]·A[n,d]), [H, K, V]
    S = add(S, mul(unsqueeze(select(Bf, 0, r), 2), unsqueeze(mul(d, xr), 1)));
    Tensor y = sum(mul(S, unsqueeze(select(Cf, 0, r), 2)), {1});  // [H, V]
    if (a.D.defined()) y = add(y, mul(a.D, xr));
    return std::make_pair(S, y);
  });
}

}  // namespace lnx::kernels
