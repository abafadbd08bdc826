// Linear maps and embeddings. Shapes: x [..., I] → [..., O]; weight [O, I] (the layout of
// PyTorch and Hugging Face checkpoints); ids [...] → [..., D].
#pragma once

#include <memory>

#include "modules/module.h"
#include "tensor/autograd.h"
#include "tensor/cpu/packed_weight.h"

namespace lnx::modules {

// y = x Wᵀ + b. Weight ~ N(0, std²) (0.02 as in GPT-2 and flash-linear-attention), bias 0.
// For generation the weight can be packed to bf16 or int8 (tensor/cpu/packed_weight.h): forward
// then reads the packed copy, without gradients (a forward that records them is an error).
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen, double std = 0.02);
  Tensor forward(const Tensor& x) const;
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  // Packs the current weight (f32: back to the f32 weight). A later change of `weight` is not
  // seen by the packed copy: pack again.
  void pack_weight(WeightFormat format);
  WeightFormat weight_format() const { return packed_ ? packed_->format : WeightFormat::f32; }
  const PackedWeight* packed() const { return packed_.get(); }  // null with f32 weights
  Tensor& weight;                                               // [O, I]
  Tensor* bias = nullptr;                                       // [O] when present

 private:
  int64_t in_, out_;
  std::shared_ptr<const PackedWeight> packed_;
};

// x [..., I] · Wᵀ through a packed weight [O, I] → [..., O] (f32 x; no gradients).
Tensor packed_linear(const Tensor& x, const PackedWeight& w, const char* op);
// The same for several weights of one input (one streamed pass; see packed_matmul_group).
TensorList packed_linear_group(const Tensor& x, const std::vector<const PackedWeight*>& ws, const char* op);

// Several Linears of one input x [..., I] → their outputs [..., O_j], in order. With packed
// weights (generation) they are streamed in one pass (packed_matmul_group); otherwise each is
// its own forward, differentiable as usual.
TensorList linear_group(const Tensor& x, const std::vector<const Linear*>& linears);

// A rank-r factorisation x → Linear(I, r, no bias) → Linear(r, O, bias): GLA's gate projection.
class LowRankLinear : public Module {
 public:
  LowRankLinear(int64_t in, int64_t rank, int64_t out, bool bias, Generator& gen, double std = 0.02);
  Tensor forward(const Tensor& x) const;
  Linear& down;
  Linear& up;
};

// Rows of weight [V, D] ~ N(0, std²).
class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, Generator& gen, double std = 0.02);
  Tensor forward(const Tensor& ids) const;  // ids integer [...] in [0, V)
  Tensor& weight;                           // [V, D]
};

}  // namespace lnx::modules
