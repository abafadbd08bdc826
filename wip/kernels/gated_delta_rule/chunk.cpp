// The chunk form of gated_delta_rule: the WY / UT-transform chunk algorithm with its hand-written
// chunked backward (common/wy_transform.cpp).
#include "kernels/common/delta_family.h"
#include "kernels/gated_delta_rule/gated_delta_rule.h"

namespace lnx::kernels {

MechanismOutputs gated_delta_rule_chunk(const TensorDict& in, const MechanismOptions& opt) {
  const std::string op = "gated_delta_rule_chunk";
  check_chunk_size(op, opt.chunk_size);
  DeltaArgs a = delta_args(op, in, opt, DeltaGate::scalar);
  return run_delta_kernel(a, opt, delta_chunk_kernel(opt.chunk_size));
}

}  // namespace lnx::kernels
