#include "kernels/builtin.h"
#include "kernels/softmax_attention/softmax_attention.h"

namespace lnx::kernels {

Mechanism softmax_attention_mechanism() {
  Mechanism m;
  m.name = "softmax_attention";
  m.description =
      "causal softmax attention softmax(scale q k^T) v, tiled with an online softmax; optional "
      "sliding window and grouped KV heads; the recurrent form decodes against a KV cache";
  m.inputs = {{"q", "[B,T,H,K]", true, "queries"},
              {"k", "[B,T,HK,K]", true, "keys (HK kv heads, HK divides H)"},
              {"v", "[B,T,HK,V]", true, "values"},
              {"k_cache", "[N,Tc,HK,K]", false, "keys of Tc earlier tokens (with v_cache)"},
              {"v_cache", "[N,Tc,HK,V]", false, "values of Tc earlier tokens (with k_cache)"}};
  m.options = {"window"};
  m.has_recurrent_state = false;
  m.forms = {{Form::reference, softmax_attention_reference},
             {Form::recurrent, softmax_attention_recurrent},
             {Form::chunk, softmax_attention_chunk}};
  // Grouped KV heads whenever the head count allows: HK = H/2 for even H, else H.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    const int64_t HK = s.H % 2 == 0 ? s.H / 2 : s.H;
    TensorDict d;
    d.insert("q", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("k", randn({s.B, s.T, HK, s.K}, gen, dtype));
    d.insert("v", randn({s.B, s.T, HK, s.V}, gen, dtype));
    return d;
  };
  // Useful FLOPs of the forward (every form): each of the T(T+1)/2 causal (query, key) pairs
  // per sequence and head costs 2K for the score and 2V for its share of P·V; the masked half
  // of the diagonal tiles, the softmax exponentials and the rescaling are not counted.
  m.flops = [](const ProblemSize& s, Form, int64_t) {
    const double pairs = static_cast<double>(s.T) * (static_cast<double>(s.T) + 1) / 2;
    return static_cast<double>(s.B) * s.H * pairs * 2.0 * (s.K + s.V);
  };
  return m;
}

}  // namespace lnx::kernels
