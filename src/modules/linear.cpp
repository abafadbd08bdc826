#include "modules/linear.h"

#include <algorithm>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

Linear::Linear(int64_t in, int64_t out, bool bias, Generator& gen, double std)
    : weight(add_parameter("weight", init_normal({out, in}, std, gen))), in_(in), out_(out) {
  if (bias) this->bias = &add_parameter("bias", zeros({out}));
}

Tensor Linear::forward(const Tensor& x) const {
  LNX_CHECK(x.dim() >= 1 && x.size(-1) == in_, ShapeError, "[Linear] x must be [..., {}], got {}", in_,
            shape_str(x.shape()));
  LNX_CHECK(!packed_ || !grad_enabled() || !weight.requires_grad(), AutogradError,
            "[Linear] the weights are packed as {} for generation, which has no gradients; training needs the f32 "
            "weights (weights f32)",
            weight_format_name(weight_format()));
  Tensor y = packed_ ? packed_linear(x, *packed_, "Linear") : matmul(x, transpose(weight, 0, 1));
  return bias ? add(y, *bias) : y;
}

void Linear::pack_weight(WeightFormat format) {
  if (format == WeightFormat::f32) {
    packed_.reset();
    return;
  }
  const Tensor w = to_dtype(weight.detach(), DType::f32).contiguous();
  packed_ = std::make_shared<const PackedWeight>(lnx::pack_weight(w.data<float>(), out_, in_, format));
}

Tensor packed_linear(const Tensor& x, const PackedWeight& w, const char* op) {
  LNX_CHECK(!grad_enabled() || !x.requires_grad(), AutogradError,
            "[{}] the weights are packed as {} for generation, which has no gradients; training needs the f32 "
            "weights (weights f32)",
            op, weight_format_name(w.format));
  LNX_CHECK(x.dim() >= 1 && x.size(-1) == w.cols, ShapeError, "[{}] x must be [..., {}], got {}", op, w.cols,
            shape_str(x.shape()));
  const Tensor xc = to_dtype(x.detach(), DType::f32).contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = w.rows;
  Tensor y = Tensor::empty(out_shape, DType::f32);
  packed_matmul(xc.data<float>(), xc.numel() / std::max<int64_t>(w.cols, 1), w, y.data<float>());
  return x.dtype() == DType::f32 ? y : to_dtype(y, x.dtype());
}

LowRankLinear::LowRankLinear(int64_t in, int64_t rank, int64_t out, bool bias, Generator& gen, double std)
    : down(add_module("0", std::make_unique<Linear>(in, rank, false, gen, std))),
      up(add_module("1", std::make_unique<Linear>(rank, out, bias, gen, std))) {}

Tensor LowRankLinear::forward(const Tensor& x) const { return up.forward(down.forward(x)); }

Embedding::Embedding(int64_t vocab, int64_t dim, Generator& gen, double std)
    : weight(add_parameter("weight", init_normal({vocab, dim}, std, gen))) {}

Tensor Embedding::forward(const Tensor& ids) const {
  LNX_CHECK(!is_floating(ids.dtype()), DTypeError, "[Embedding] ids must be integers, got {}", dtype_name(ids.dtype()));
  return embedding(weight, ids);
}

}  // namespace lnx::modules
