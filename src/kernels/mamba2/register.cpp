#include <cmath>

#include "kernels/builtin.h"
#include "kernels/common/registration.h"
#include "kernels/mamba2/mamba2.h"

namespace lnx::kernels {

Mechanism mamba2_mechanism() {
  Mechanism m;
  m.name = "mamba2";
  m.description =
      "Mamba-2 SSD: S_t = exp(dt_t A) S_{t-1} + dt_t B_t x_t^T, y_t = S_t^T C_t + D x_t, "
      "dt = softplus(dt_raw + dt_bias), A = -exp(A_log); scale defaults to 1";
  m.inputs = {{"x", "[B,T,H,V]", true, "values (Mamba's head dim P plays V)"},
              {"dt", "[B,T,H]", true, "raw time steps (before softplus)"},
              {"A_log", "[H]", true, "log of -A (A = -exp(A_log))"},
              {"dt_bias", "[H]", false, "added to dt before softplus"},
              {"B", "[B,T,H,K]", true, "input projection (state dim N plays K)"},
              {"C", "[B,T,H,K]", true, "output projection"},
              {"D", "[H]", false, "skip: y += D x"},
              {"initial_state", "[N,H,K,V]", false, "state before the first token"}};
  // (move-assigned: copy-assigning a one-letter literal trips GCC 12's -Wrestrict false positive)
  m.key_input = std::string("B");
  m.value_input = std::string("x");
  m.forms = {{Form::reference, mamba2_reference},
             {Form::recurrent, mamba2_recurrent},
             {Form::chunk, mamba2_chunk}};
  // Log gates Δ·A: Δ = softplus(N(0,1) + bias) is about 0.1 … 3, A spans −0.01 … −20, so the
  // gates run from nearly 0 to about −60.
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) {
    TensorDict d;
    d.insert("x", randn({s.B, s.T, s.H, s.V}, gen, dtype));
    d.insert("dt", randn({s.B, s.T, s.H}, gen, dtype));
    d.insert("A_log", uniform({s.H}, std::log(0.01), std::log(20.0), gen, dtype));
    d.insert("dt_bias", mul(randn({s.H}, gen, dtype), 0.5));
    d.insert("B", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("C", randn({s.B, s.T, s.H, s.K}, gen, dtype));
    d.insert("D", randn({s.H}, gen, dtype));
    return d;
  };
  // As simple_gla (the gate and value maps are O(T·H·V), not counted).
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::kernels
