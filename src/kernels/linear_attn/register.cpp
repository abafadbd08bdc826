#include "kernels/builtin.h"
#include "kernels/linear_attn/linear_attn.h"

namespace lnx::kernels {

Mechanism linear_attn_mechanism() {
  Mechanism m;
  m.name = "linear_attn";
  m.description =
      "linear attention: S_t = S_{t-1} + k_t v_t^T, o_t = S_t^T (scale q_t); option normalize "
      "divides by scale q_t.z_t + 1e-10 with z_t the sum of the keys so far in this call "
      "(not carried by the state)";
  m.inputs = {{"q", "[B,T,H,K]", true, "queries (feature-mapped by the layer)"},
              {"k", "[B,T,H,K]", true, "keys (feature-mapped by the layer)"},
              {"v", "[B,T,H,V]", true, "values"},
              {"initial_state", "[N,H,K,V]", false, "state before the first token"}};
  m.options = {"normalize"};
  m.forms = {{Form::reference, linear_attn_reference},
             {Form::recurrent, linear_attn_recurrent},
             {Form::chunk, linear_attn_chunk}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d;
    d.insert("q", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("k", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("v", randn({s.B, s.T, s.H, s.V}, gen, dtype));
    return d;
  };
  // As simple_gla: state update and read (4KV per token and head), plus the chunk form's
  // intra-chunk attention (2·S·(K+V)).
  m.flops = [](const ProblemSize& s, Form form, int64_t chunk) {
    const double tokens = static_cast<double>(s.B) * s.T * s.H;
    double per = 4.0 * s.K * s.V;
    if (form == Form::chunk) per += 2.0 * chunk * (s.K + s.V);
    return tokens * per;
  };
  return m;
}

}  // namespace lnx::kernels
