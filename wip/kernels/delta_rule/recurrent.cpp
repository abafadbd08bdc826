// The recurrent form of delta_rule: the delta family's fused token loop with its hand-written vjp
// (common/delta_recurrent.cpp).
#include "kernels/common/delta_family.h"
#include "kernels/delta_rule/delta_rule.h"

namespace lnx::kernels {

MechanismOutputs delta_rule_recurrent(const TensorDict& in, const MechanismOptions& opt) {
  DeltaArgs a = delta_args("delta_rule_recurrent", in, opt, DeltaGate::none);
  return run_delta_kernel(a, opt, delta_recurrent_kernel());
}

}  // namespace lnx::kernels
