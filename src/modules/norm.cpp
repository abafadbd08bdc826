#include "modules/norm.h"

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

RMSNorm::RMSNorm(int64_t dim, double eps_, bool zero_centered_)
    : weight(add_parameter("weight", zero_centered_ ? zeros({dim}) : ones({dim}))),
      eps(eps_),
      zero_centered(zero_centered_) {}

Tensor RMSNorm::forward(const Tensor& x) const { return rms_norm(x, zero_centered ? add(weight, 1.0) : weight, eps); }

GatedRMSNorm::GatedRMSNorm(int64_t dim, double eps_, bool norm_before_gate_)
    : weight(add_parameter("weight", ones({dim}))), eps(eps_), norm_before_gate(norm_before_gate_) {}

Tensor GatedRMSNorm::forward(const Tensor& x, const Tensor& z) const {
  LNX_CHECK(x.shape() == z.shape(), ShapeError, "[GatedRMSNorm] x is {} but the gate z is {}", shape_str(x.shape()),
            shape_str(z.shape()));
  if (norm_before_gate) return swiglu(z, rms_norm(x, weight, eps));
  return rms_norm(swiglu(z, x), weight, eps);
}

}  // namespace lnx::modules
