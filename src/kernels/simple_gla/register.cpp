#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/simple_gla/simple_gla.h"

namespace lnx::kernels {

namespace {
TensorDict random_qkv(const ProblemSize& s, Generator& gen, DType dtype) {
  TensorDict d;
  d.insert("q", randn({s.B, s.T, s.H, s.K}, gen, dtype));
  d.insert("k", randn({s.B, s.T, s.H, s.K}, gen, dtype));
  d.insert("v", randn({s.B, s.T, s.H, s.V}, gen, dtype));
  return d;
}

// Useful FLOPs of the forward: per token and head, the state update (2KV) and the read (2KV)
// for the recurrence; the chunk form adds the intra-chunk attention (2·S·K + 2·S·V per token,
// half of it masked, counted as done).
double gla_like_flops(const ProblemSize& s, Form form, int64_t chunk) {
  const double tokens = static_cast<double>(s.B) * s.T * s.H;
  double per = 4.0 * s.K * s.V;
  if (form == Form::chunk) per += 2.0 * chunk * (s.K + s.V);
  return tokens * per;
}
}  // namespace

Mechanism simple_gla_mechanism() {
  Mechanism m;
  m.name = "simple_gla";
  m.description = "gated linear attention, scalar gate per head: S_t = exp(g_t) S_{t-1} + k_t v_t^T";
  m.inputs = {{"q", "[B,T,H,K]", true, "queries"},
              {"k", "[B,T,H,K]", true, "keys"},
              {"v", "[B,T,H,V]", true, "values"},
              {"g", "[B,T,H]", false, "log gates (<= 0)"},
              {"g_gamma", "[H]", false, "fixed per-head log decay"},
              {"initial_state", "[N,H,K,V]", false, "state before the first token"}};
  m.forms = {{Form::reference, simple_gla_reference},
             {Form::recurrent, simple_gla_recurrent},
             {Form::chunk, simple_gla_chunk}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d = random_qkv(s, gen, dtype);
    d.insert("g", random_log_gates({s.B, s.T, s.H}, gen, dtype));
    return d;
  };
  m.flops = gla_like_flops;
  return m;
}

}  // namespace lnx::kernels

namespace lnx::kernels {

// retention (RetNet): simple_gla with the fixed decays g_gamma_h = log(1 − 2^(−5−h)).
Mechanism retention_mechanism() {
  Mechanism m;
  m.name = "retention";
  m.description = "RetNet retention: simple_gla with fixed per-head decay log(1 - 2^(-5-h))";
  m.inputs = {{"q", "[B,T,H,K]", true, "queries"},
              {"k", "[B,T,H,K]", true, "keys"},
              {"v", "[B,T,H,V]", true, "values"},
              {"initial_state", "[N,H,K,V]", false, "state before the first token"}};
  auto with_decays = [](MechanismFn f) -> MechanismFn {
    return [f](const TensorDict& in, const MechanismOptions& o) {
      TensorDict d = in;
      const Tensor& q = in.at("q");
      LNX_CHECK(q.dim() == 4, ShapeError, "[retention] q is {}: expected [B,T,H,K]", shape_str(q.shape()));
      d.insert("g_gamma", retention_log_decays(q.size(2), q.dtype()));
      return f(d, o);
    };
  };
  m.forms = {{Form::reference, with_decays(simple_gla_reference)},
             {Form::recurrent, with_decays(simple_gla_recurrent)},
             {Form::chunk, with_decays(simple_gla_chunk)}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) { return random_qkv(s, gen, dtype); };
  m.flops = gla_like_flops;
  return m;
}

}  // namespace lnx::kernels
