#include "kernels/softmax_attention/args.h"

#include "tensor/autograd.h"

namespace lnx::kernels::attention_detail {

namespace {

// x must be 4-d with q's dtype and the given sizes (−1 = any) on each axis.
void check_4d(const std::string& op, const std::string& what, const std::string& expected,
              const Tensor& x, const Tensor& q, std::array<int64_t, 4> sizes) {
  LNX_CHECK(x.dtype() == q.dtype(), DTypeError, "[{}] q is {} but {} is {}: all must have one dtype",
            op, dtype_name(q.dtype()), what, dtype_name(x.dtype()));
  bool ok = x.dim() == 4;
  for (int a = 0; ok && a < 4; ++a) ok = sizes[a] < 0 || x.size(a) == sizes[a];
  LNX_CHECK(ok, ShapeError, "[{}] {} is {}: expected {} (q is {})", op, what, shape_str(x.shape()),
            expected, shape_str(q.shape()));
}

}  // namespace

Args parse_args(const std::string& op, const TensorDict& in, const MechanismOptions& opt) {
  const Tensor q = optional_input(in, "q"), k = optional_input(in, "k"), v = optional_input(in, "v");
  const Tensor kc = optional_input(in, "k_cache"), vc = optional_input(in, "v_cache");
  LNX_CHECK(k.defined() && v.defined(), ValueError, "[{}] q, k and v are required", op);
  // q and cu_seqlens (k and v have their own head count, checked below).
  const SequenceLayout S = check_qkv(op, q, q, q, opt.cu_seqlens);
  Args a;
  Layout& L = a.L;
  L.B = S.B, L.T = S.T, L.H = S.H, L.K = S.K, L.N = S.N, L.qoff = S.offsets;
  check_4d(op, "k", "[B,T,HK,K]", k, q, {L.B, L.T, -1, L.K});
  L.HK = k.size(2);
  LNX_CHECK(L.HK >= 1 && L.H % L.HK == 0, ShapeError,
            "[{}] q has {} heads but k has {}: the kv heads must divide the query heads", op, L.H, L.HK);
  check_4d(op, "v", "[B,T,HK,V] with k's B, T, HK", v, q, {L.B, L.T, L.HK, -1});
  L.V = v.size(3);
  LNX_CHECK(kc.defined() == vc.defined(), ValueError, "[{}] k_cache and v_cache come together", op);
  if (kc.defined()) {
    check_4d(op, "k_cache", "[N,Tc,HK,K]", kc, q, {L.N, -1, L.HK, L.K});
    L.Tc = kc.size(1);
    check_4d(op, "v_cache", "[N,Tc,HK,V] with k_cache's Tc", vc, q, {L.N, L.Tc, L.HK, L.V});
  }
  LNX_CHECK(opt.window >= 0, ValueError, "[{}] window is {}: expected >= 0 (0 = unlimited)", op, opt.window);
  L.window = opt.window;
  a.scale = resolve_scale(opt, L.K);

  // The key buffer: per sequence, its cache then its new keys.
  const Tensor kf = reshape(k, {L.B * L.T, L.HK, L.K}), vf = reshape(v, {L.B * L.T, L.HK, L.V});
  if (!kc.defined()) {
    a.kall = kf, a.vall = vf, L.koff = L.qoff;
  } else {
    TensorList ks, vs;
    L.koff = {0};
    for (int64_t n = 0; n < L.N; ++n) {
      ks.push_back(select(kc, 0, n));
      vs.push_back(select(vc, 0, n));
      if (L.qlen(n) > 0) {
        ks.push_back(slice(kf, 0, L.qoff[n], L.qoff[n + 1]));
        vs.push_back(slice(vf, 0, L.qoff[n], L.qoff[n + 1]));
      }
      L.koff.push_back(L.koff.back() + L.Tc + L.qlen(n));
    }
    a.kall = concat(ks, 0), a.vall = concat(vs, 0);
  }
  a.q = q;
  a.qd = q.detach().contiguous(), a.kd = a.kall.detach().contiguous(), a.vd = a.vall.detach().contiguous();

  if (opt.output_final_state) {
    bool equal = true;
    for (int64_t n = 1; n < L.N; ++n) equal = equal && L.qlen(n) == L.qlen(0);
    if (equal && L.N > 0) {
      const int64_t len = L.Tc + L.qlen(0);
      a.extra_state.insert("k_cache", reshape(a.kall, {L.N, len, L.HK, L.K}));
      a.extra_state.insert("v_cache", reshape(a.vall, {L.N, len, L.HK, L.V}));
    }
  }
  return a;
}

MechanismOutputs run_and_record(const std::string& op, const Args& a, const Tensor& o, Backward backward) {
  MechanismOutputs out;
  out.o = o;
  out.extra_state = a.extra_state;
  const TensorList inputs{a.q, a.kall, a.vall};
  if (!needs_grad(inputs)) return out;
  Args kept = a;  // the closure keeps the detached tensors only
  kept.q = kept.kall = kept.vall = Tensor();
  kept.extra_state = TensorDict();
  record(op, inputs, {&out.o}, [kept, backward](const VjpContext& c) -> TensorList {
    auto g = backward(kept, c.grad(0).contiguous());
    return {g[0], g[1], g[2]};
  });
  return out;
}

}  // namespace lnx::kernels::attention_detail
