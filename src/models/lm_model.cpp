#include "models/lm_model.h"

#include <algorithm>
#include <cmath>

#include "core/varlen.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::models {

namespace {

// Output projections of the residual branches are scaled by 1/√(2·n_layer) at init (GPT-2's
// and flash-linear-attention's prenorm-residual rescaling), so the residual stream's variance
// does not grow with depth.
bool is_residual_output(const std::string& name) {
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends_with("mixer.o_proj.weight") || ends_with("mixer.out_proj.weight") || ends_with("mlp.down_proj.weight");
}

}  // namespace

LMModel::LMModel(const ModelConfig& config, uint64_t seed) : config_(config) {
  config_.validate();
  Generator gen(seed);
  embeddings = &add_module("embeddings",
                           std::make_unique<modules::Embedding>(config_.vocab_size, config_.d_model, gen, config_.init_std));
  for (int64_t i = 0; i < config_.n_layer; ++i)
    blocks_.push_back(&add_module("blocks." + std::to_string(i), std::make_unique<Block>(config_, i, gen)));
  norm = &add_module("norm", std::make_unique<modules::RMSNorm>(config_.d_model, config_.norm_eps));
  if (!config_.tie_embeddings)
    lm_head = &add_module("lm_head", std::make_unique<modules::Linear>(config_.d_model, config_.vocab_size, false, gen,
                                                                       config_.init_std));
  const double rescale = 1.0 / std::sqrt(2.0 * static_cast<double>(config_.n_layer));
  for_each_parameter([&](const std::string& name, Tensor& p) {
    if (!is_residual_output(name)) return;
    Tensor scaled = mul(p.detach(), rescale);
    scaled.set_requires_grad();
    p = scaled;
  });
}

ModelOutput LMModel::forward(const Tensor& ids, const core::ModelState* state, const ForwardOptions& options) const {
  LNX_CHECK(ids.defined() && ids.dim() == 2 && !is_floating(ids.dtype()), ShapeError,
            "[LMModel] ids must be integer [B, T], got {}",
            ids.defined() ? dtype_name(ids.dtype()) + std::string(" ") + shape_str(ids.shape()) : "an undefined tensor");
  LNX_CHECK(!(options.mask.defined() && options.cu_seqlens.defined()), ValueError,
            "[LMModel] give a mask (padded batch) or cu_seqlens (packed sequences), not both");
  const bool fresh = state == nullptr || state->empty();
  LNX_CHECK(fresh || state->layers.size() == blocks_.size(), ValueError,
            "[LMModel] the state has {} layers but the model has {} blocks", fresh ? 0 : state->layers.size(),
            blocks_.size());
  Tensor x = embeddings->forward(ids);  // [B, T, D]
  modules::MixerInput in;
  in.mode = options.mode;
  core::Packing packing;
  if (options.mask.defined()) {
    packing = core::packing_from_mask(options.mask);
    LNX_CHECK(packing.B == ids.size(0) && packing.T == ids.size(1), ShapeError,
              "[LMModel] mask is [{}, {}] but ids are {}", packing.B, packing.T, shape_str(ids.shape()));
    x = core::pack(x, packing);
    in.cu_seqlens = packing.cu_seqlens;
  } else if (options.cu_seqlens.defined()) {
    in.cu_seqlens = options.cu_seqlens;
  }
  in.x = x;
  const int64_t N = modules::call_shape(in).N;
  ModelOutput out;
  if (!fresh) {
    LNX_CHECK(state->seen.empty() || static_cast<int64_t>(state->seen.size()) == N, ValueError,
              "[LMModel] the state holds {} sequences but the call has {}", state->seen.size(), N);
    in.seen = state->seen;
  }
  // Tokens each sequence has seen after this call.
  std::vector<int64_t> lengths;
  if (in.cu_seqlens.defined()) lengths = core::lengths_from_cu_seqlens(in.cu_seqlens, "LMModel");
  else lengths.assign(static_cast<size_t>(N), ids.size(1));
  out.state.seen.resize(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n)
    out.state.seen[static_cast<size_t>(n)] = (in.seen.empty() ? 0 : in.seen[static_cast<size_t>(n)]) + lengths[static_cast<size_t>(n)];

  for (size_t i = 0; i < blocks_.size(); ++i) {
    in.state = fresh ? nullptr : &state->layers[i];
    modules::MixerOutput r = blocks_[i]->forward(in);
    in.x = r.y;
    out.state.layers.push_back(std::move(r.state));
  }
  Tensor h = norm->forward(in.x);
  Tensor logits = lm_head ? lm_head->forward(h) : matmul(h, transpose(embeddings->weight, 0, 1));
  out.logits = options.mask.defined() ? core::unpack(logits, packing) : logits;
  return out;
}

Tensor LMModel::loss(const Tensor& ids, const Tensor& targets, const ForwardOptions& options) const {
  LNX_CHECK(targets.shape() == ids.shape(), ShapeError, "[LMModel] targets are {} but ids are {}",
            shape_str(targets.shape()), shape_str(ids.shape()));
  Tensor logits = forward(ids, nullptr, options).logits;
  Tensor t = targets;
  if (options.mask.defined()) {
    // Padding positions do not count.
    t = where(options.mask, to_dtype(targets, DType::i64), full(targets.shape(), -100, DType::i64));
  }
  return cross_entropy(reshape(logits, {-1, config_.vocab_size}), reshape(t, {-1}));
}

double LMModel::flops_per_token(int64_t context) const {
  double f = 2.0 * static_cast<double>(config_.d_model) * static_cast<double>(config_.vocab_size);
  for (const Block* b : blocks_) f += b->flops_per_token(context);
  return f;
}

}  // namespace lnx::models
