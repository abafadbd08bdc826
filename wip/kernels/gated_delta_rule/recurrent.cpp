// The recurrent form of gated_delta_rule: the delta family's fused token loop with its hand-written
// vjp (common/delta_recurrent.cpp).
#include "kernels/common/delta_family.h"
#include "kernels/gated_delta_rule/gated_delta_rule.h"

namespace lnx::kernels {

MechanismOutputs gated_delta_rule_recurrent(const TensorDict& in, const MechanismOptions& opt) {
  DeltaArgs a = delta_args("gated_delta_rule_recurrent", in, opt, DeltaGate::scalar);
  return run_delta_kernel(a, opt, delta_recurrent_kernel());
}

}  // namespace lnx::kernels
