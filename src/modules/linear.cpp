#include "modules/linear.h"

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
  Tensor y = matmul(x, transpose(weight, 0, 1));
  return bias ? add(y, *bias) : y;
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
