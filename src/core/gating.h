// Gate transforms the mixers share (all composed of differentiable tensor ops), and the
// initialisations their papers give for the gate parameters.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace lnx::core {

// GLA's per-key-dim log gate: logsigmoid(x) / normalizer (normalizer 16 in the paper's code).
Tensor logsigmoid_gate(const Tensor& x, double normalizer);

// Mamba-2 / Gated DeltaNet decay: g = −exp(A_log) · softplus(a + dt_bias), with a [..., H],
// A_log [H], dt_bias [H] (broadcast over the last axis). g ≤ 0 is a log decay.
Tensor softplus_decay(const Tensor& a, const Tensor& A_log, const Tensor& dt_bias);

// dt_bias initialisation of Mamba: dt ~ exp(U(log dt_min, log dt_max)) clamped below at
// dt_floor, returned as softplus⁻¹(dt) = dt + log(−expm1(−dt)), so that softplus(dt_bias) = dt.
Tensor dt_bias_init(int64_t n, Generator& gen, double dt_min = 0.001, double dt_max = 0.1, double dt_floor = 1e-4,
                    DType dtype = DType::f32);

// A_log initialisation: log(U(lo, hi)) per head (Mamba-2: (1, 16); Gated DeltaNet: (0, 16]).
Tensor A_log_init(int64_t n, Generator& gen, double lo, double hi, DType dtype = DType::f32);

}  // namespace lnx::core
