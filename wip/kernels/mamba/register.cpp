#include <cmath>

#include "kernels/builtin.h"
#include "kernels/mamba/mamba.h"

namespace lnx::kernels {

Mechanism mamba_mechanism() {
  Mechanism m;
  m.name = "mamba";
  m.description =
      "Mamba-1 selective scan, per channel d: h_t = exp(dt_t[d] A[d,:]) h_{t-1} + dt_t[d] B_t x_t[d], "
      "y_t = C_t . h_t + D x_t, dt = softplus(dt_raw + dt_bias), A = -exp(A_log); heads are the "
      "groups of grouped B/C, K the state dim, V the channels per group; scale defaults to 1";
  m.inputs = {{"x", "[B,T,H,V]", true, "inputs (the channels of group h)"},
              {"dt", "[B,T,H,V]", true, "raw time steps per channel (before softplus)"},
              {"A_log", "[H,V,K]", true, "log of -A (A = -exp(A_log)); mamba_ssm's [d_inner, d_state]"},
              {"dt_bias", "[H,V]", false, "added to dt before softplus"},
              {"B", "[B,T,H,K]", true, "input projection, shared by the channels of a group"},
              {"C", "[B,T,H,K]", true, "output projection, shared by the channels of a group"},
              {"D", "[H,V]", false, "skip: y += D x"},
              {"initial_state", "[N,H,K,V]", false, "state before the first token"}};
  // (move-assigned: copy-assigning a one-letter literal trips GCC 12's -Wrestrict false positive)
  m.key_input = std::string("B");
  m.value_input = std::string("x");
  m.forms = {{Form::reference, mamba_reference},
             {Form::recurrent, mamba_recurrent},
             {Form::chunk, mamba_chunk}};
  // As mamba_ssm initialises them: A = -(1 … K) along the state dim (S4D-real), here with a
  // random spread of a factor e^{±0.5}; dt = N(0,1)·0.5 − 1 with a small bias, so Δ is about
  // 0.1 … 1 and the log decays Δ·A run from about −0.05 to −K.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d;
    d.insert("x", randn({s.B, s.T, s.H, s.V}, gen, dtype));
    d.insert("dt", sub(mul(randn({s.B, s.T, s.H, s.V}, gen, dtype), 0.5), 1.0));
    std::vector<double> a(static_cast<size_t>(s.H * s.V * s.K));
    for (size_t i = 0; i < a.size(); ++i) a[i] = std::log(static_cast<double>(i % s.K + 1));
    Tensor spread = uniform({s.H, s.V, s.K}, -0.5, 0.5, gen, DType::f64);
    d.insert("A_log", add(from_vector<double>(a, {s.H, s.V, s.K}), spread).to(dtype));
    d.insert("dt_bias", mul(randn({s.H, s.V}, gen, dtype), 0.1));
    d.insert("B", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("C", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("D", randn({s.H, s.V}, gen, dtype));
    return d;
  };
  // Per token, group, state index and channel: the decay's argument (1), the update (3) and
  // the read (2); the exponential is counted as one FLOP. The chunk form does about twice this
  // work (its second scan), which is not counted as useful.
  m.flops = [](const ProblemSize& s, Form, int64_t) {
    return 7.0 * static_cast<double>(s.B) * s.T * s.H * s.K * s.V;
  };
  return m;
}

}  // namespace lnx::kernels
