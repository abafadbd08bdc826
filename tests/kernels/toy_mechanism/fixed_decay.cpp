// fixed_decay's declaration, its reference form, and its fast forms (the primitives of
// recurrent.cpp and chunk.cpp).
#include "kernels/toy_mechanism/fixed_decay.h"

#include "kernels/common/reference_scan.h"
#include "kernels/common/registration.h"
#include "kernels/toy_mechanism/fixed_decay_internal.h"

namespace lnx::toy {

using namespace kernels;

namespace {

MechanismOutputs reference(const Call& c) {
  const double decay = c.options_as<FixedDecayOptions>().decay;
  Tensor qf = mul(token_rows(c["q"]), c.scale), kf = token_rows(c["k"]), vf = token_rows(c["v"]);
  return reference_scan(c, [&](int64_t t, const Tensor& S0) {
    Tensor S = add(mul(S0, decay), mul(unsqueeze(select(kf, 0, t), 2), unsqueeze(select(vf, 0, t), 1)));
    return std::make_pair(S, sum(mul(S, unsqueeze(select(qf, 0, t), 2)), {1}));
  });
}

}  // namespace

std::vector<InputSpec> fixed_decay_inputs() {
  std::vector<InputSpec> s = qkv_specs();
  s.push_back(initial_state_spec());
  return s;
}

Mechanism fixed_decay_mechanism() {
  Mechanism m;
  m.name = "toy_fixed_decay";
  m.description = "test-only toy: linear attention with one fixed decay";
  m.equation = "S_t = decay S_{t-1} + k_t v_t^T,  o_t = S_t^T (scale q_t)";
  m.inputs = fixed_decay_inputs();
  m.options = options_schema<FixedDecayOptions>();
  m.forms = {{Form::reference, reference},
             {Form::recurrent, primitive_form(fixed_decay_recurrent())},
             {Form::chunk, primitive_form(fixed_decay_chunk())}};
  m.make_inputs = [](const ProblemSize& s, Generator& gen, DType dtype) { return random_qkv(s, gen, dtype); };
  m.flops = linear_recurrence_flops;
  return m;
}

}  // namespace lnx::toy
