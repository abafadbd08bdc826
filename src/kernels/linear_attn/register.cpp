#include "kernels/builtin.h"
#include "kernels/common/registration.h"
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
              initial_state_spec()};
  m.options = {"normalize"};
  m.forms = {{Form::reference, linear_attn_reference},
             {Form::recurrent, linear_attn_recurrent},
             {Form::chunk, linear_attn_chunk}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) { return random_qkv(s, gen, dtype); };
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels
