#include "kernels/builtin.h"
#include "kernels/common/gates.h"
#include "kernels/gla/gla.h"

namespace lnx::kernels {

namespace {
// Useful FLOPs of the forward, per token and head: the state update (2KV) and the read (2KV);
// the chunk form adds the intra-chunk scores q kᵀ (2·S·K) and their product with v (2·S·V),
// counted over the whole S×S block although the upper half is masked.
double gla_flops(const ProblemSize& s, Form form, int64_t chunk) {
  const double tokens = static_cast<double>(s.B) * s.T * s.H;
  double per = 4.0 * s.K * s.V;
  if (form == Form::chunk) per += 2.0 * chunk * (s.K + s.V);
  return tokens * per;
}
}  // namespace

Mechanism gla_mechanism() {
  Mechanism m;
  m.name = "gla";
  m.description = "gated linear attention, per-key-dim gate: S_t = Diag(exp(g_t)) S_{t-1} + k_t v_t^T";
  m.inputs = {{"q", "[B,T,H,K]", true, "queries"},
              {"k", "[B,T,H,K]", true, "keys"},
              {"v", "[B,T,H,V]", true, "values"},
              {"g", "[B,T,H,K]", true, "log gates (<= 0), one per key dim"},
              {"initial_state", "[N,H,K,V]", false, "state before the first token"}};
  m.forms = {{Form::reference, gla_reference}, {Form::recurrent, gla_recurrent}, {Form::chunk, gla_chunk}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d;
    d.insert("q", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("k", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("v", randn({s.B, s.T, s.H, s.V}, gen, dtype));
    d.insert("g", random_log_gates({s.B, s.T, s.H, s.K}, gen, dtype));
    return d;
  };
  m.flops = gla_flops;
  return m;
}

}  // namespace lnx::kernels
