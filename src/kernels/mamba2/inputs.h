// Internal to mamba2: validation of its inputs, shared by the three forms.
#pragma once

#include <string>

#include "kernels/common/layout.h"

namespace lnx::kernels::mamba2_detail {

struct Inputs {
  SequenceLayout L;  // K = state dim (B, C), V = head dim P (x)
  Tensor x, dt, A_log, dt_bias, B, C, D, h0;  // dt_bias, D, h0 may be undefined
  double scale = 1.0;
};

Inputs check_inputs(const std::string& op, const TensorDict& in, const MechanismOptions& opt);

}  // namespace lnx::kernels::mamba2_detail
