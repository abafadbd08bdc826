#include "modules/linear.h"

#include <algorithm>

#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tensor/profile.h"

namespace lnx::modules {

Linear::Linear(int64_t in, int64_t out, bool bias, Generator& gen, double std)
    : weight(add_parameter("weight", init_normal({out, in}, std, gen))), in_(in), out_(out) {
  if (bias) this->bias = &add_parameter("bias", zeros({out}));
}

namespace {
// A packed Linear has no gradients: a forward that would record them is an error.
void refuse_recording(const Linear& l) {
  LNX_CHECK(!grad_enabled() || !l.weight.requires_grad(), AutogradError,
            "[Linear] the weights are packed as {} for generation, which has no gradients; training needs the f32 "
            "weights (weights f32)",
            weight_format_name(l.weight_format()));
}
}  // namespace

Tensor Linear::forward(const Tensor& x) const {
  LNX_CHECK(x.dim() >= 1 && x.size(-1) == in_, ShapeError, "[Linear] x must be [..., {}], got {}", in_,
            shape_str(x.shape()));
  if (packed_) refuse_recording(*this);
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
  return packed_linear_group(x, {&w}, op).front();
}

TensorList packed_linear_group(const Tensor& x, const std::vector<const PackedWeight*>& ws, const char* op) {
  LNX_CHECK(!ws.empty(), ValueError, "[{}] no weights to multiply", op);
  LNX_CHECK(!grad_enabled() || !x.requires_grad(), AutogradError,
            "[{}] the weights are packed as {} for generation, which has no gradients; training needs the f32 "
            "weights (weights f32)",
            op, weight_format_name(ws.front()->format));
  LNX_CHECK(x.dim() >= 1 && x.size(-1) == ws.front()->cols, ShapeError, "[{}] x must be [..., {}], got {}", op,
            ws.front()->cols, shape_str(x.shape()));
  const Tensor xc = to_dtype(x.detach(), DType::f32).contiguous();
  TensorList out;
  std::vector<float*> ys;
  for (const PackedWeight* w : ws) {
    Shape shape = x.shape();
    shape.back() = w->rows;
    out.push_back(Tensor::empty(shape, DType::f32));
    ys.push_back(out.back().data<float>());
  }
  {
    ProfileScope profile(ProfileCategory::gemm);
    packed_matmul_group(xc.data<float>(), xc.numel() / std::max<int64_t>(ws.front()->cols, 1), ws, ys);
  }
  if (x.dtype() != DType::f32)
    for (Tensor& y : out) y = to_dtype(y, x.dtype());
  return out;
}

TensorList linear_group(const Tensor& x, const std::vector<const Linear*>& linears) {
  std::vector<const PackedWeight*> ws;
  for (const Linear* l : linears)
    if (l->packed()) ws.push_back(l->packed());
  TensorList out;
  if (ws.empty() || ws.size() != linears.size()) {
    for (const Linear* l : linears) out.push_back(l->forward(x));
    return out;
  }
  for (const Linear* l : linears) refuse_recording(*l);
  out = packed_linear_group(x, ws, "Linear");
  for (size_t j = 0; j < linears.size(); ++j)
    if (linears[j]->bias) out[j] = add(out[j], *linears[j]->bias);
  return out;
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
