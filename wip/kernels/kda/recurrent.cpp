// The recurrent form of kda: the delta family's fused token loop with its hand-written vjp
// (common/delta_recurrent.cpp), with one decay per key row.
#include "kernels/common/delta_family.h"
#include "kernels/kda/kda.h"

namespace lnx::kernels {

MechanismOutputs kda_recurrent(const TensorDict& in, const MechanismOptions& opt) {
  DeltaArgs a = delta_args("kda_recurrent", in, opt, DeltaGate::per_key);
  return run_delta_kernel(a, opt, delta_recurrent_kernel());
}

}  // namespace lnx::kernels
