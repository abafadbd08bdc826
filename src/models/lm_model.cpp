#include "models/lm_model.h"

#include <set>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/varlen.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::models {

namespace {

// Output projections of the residual branches are scaled by 1/√(branches · n_layer) at init,
// branches = 2 for a block with an MLP and 1 without (GPT-2's, flash-linear-attention's and
// mamba_ssm's prenorm-residual rescaling), so the residual stream's variance does not grow
// with depth.
bool is_residual_output(const std::string& name) {
  const std::string down = "down_proj.weight";  // the MLP's, or every expert's of an MoE
  return name == "mixer.o_proj.weight" || name == "mixer.out_proj.weight" ||
         (name.rfind("mlp.", 0) == 0 && name.size() >= down.size() &&
          name.compare(name.size() - down.size(), down.size(), down) == 0);
}

}  // namespace

LMModel::LMModel(const ModelConfig& config, uint64_t seed) : LMModel(config, seed, true) {}

std::unique_ptr<LMModel> LMModel::for_loading(const ModelConfig& config) {
  return std::unique_ptr<LMModel>(new LMModel(config, 0, false));
}

LMModel::LMModel(const ModelConfig& config, uint64_t seed, bool initialise) : config_(config) {
  config_.validate();
  std::optional<modules::SkipInit> skip;
  if (!initialise) skip.emplace();
  Generator gen(seed);
  embeddings = &add_module(
      "embeddings", std::make_unique<modules::Embedding>(config_.vocab_size, config_.d_model, gen, config_.init_std));
  // A config that would not fit in memory stops with an error, not with the OOM killer: first
  // a lower bound (every mixer projects d_model to at least d_model twice), then each block's
  // actual size times the number of blocks.
  const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  const double d = static_cast<double>(config_.d_model);
  const double lower_bound =
      (2.0 * d * d * static_cast<double>(config_.n_layer) + d * static_cast<double>(config_.vocab_size)) * 4.0;
  LNX_CHECK(physical <= 0 || lower_bound < 0.8 * physical, ValueError,
            "[LMModel] {} blocks of width {} need at least {:.1f} GiB, more than this machine's {:.1f} GiB",
            config_.n_layer, config_.d_model, lower_bound / (1 << 30), physical / (1 << 30));
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    blocks_.push_back(&add_module("blocks." + std::to_string(i), std::make_unique<Block>(config_, i, gen)));
    const double bytes =
        static_cast<double>(blocks_.back()->num_parameters()) * 4.0 * static_cast<double>(config_.n_layer);
    LNX_CHECK(physical <= 0 || bytes < 0.8 * physical, ValueError,
              "[LMModel] {} blocks of {:.1f}M parameters need about {:.1f} GiB, more than this machine's {:.1f} GiB",
              config_.n_layer, static_cast<double>(blocks_.back()->num_parameters()) / 1e6, bytes / (1 << 30),
              physical / (1 << 30));
  }
  norm = &add_module("norm",
                     std::make_unique<modules::RMSNorm>(config_.d_model, config_.norm_eps, config_.zero_centered_norm));
  if (!config_.tie_embeddings)
    lm_head = &add_module("lm_head", std::make_unique<modules::Linear>(config_.d_model, config_.vocab_size, false, gen,
                                                                       config_.init_std));
  if (!initialise) return;
  for (Block* b : blocks_) {
    const double rescale = 1.0 / std::sqrt((b->mlp || b->moe ? 2.0 : 1.0) * static_cast<double>(config_.n_layer));
    b->for_each_parameter([&](const std::string& name, Tensor& p) {
      if (!is_residual_output(name)) return;
      Tensor scaled = mul(p.detach(), rescale);
      scaled.set_requires_grad();
      p = scaled;
    });
  }
}

ModelOutput LMModel::forward(const Tensor& ids, const core::ModelState* state, const ForwardOptions& options) const {
  LNX_CHECK(
      ids.defined() && ids.dim() == 2 && !is_floating(ids.dtype()), ShapeError,
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
  if (in.cu_seqlens.defined())
    lengths = core::lengths_from_cu_seqlens(in.cu_seqlens, "LMModel");
  else
    lengths.assign(static_cast<size_t>(N), ids.size(1));
  out.state.seen.resize(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n)
    out.state.seen[static_cast<size_t>(n)] =
        (in.seen.empty() ? 0 : in.seen[static_cast<size_t>(n)]) + lengths[static_cast<size_t>(n)];

  LNX_CHECK(!options.remat || fresh, ValueError,
            "[LMModel] remat is for training from fresh sequences, not with a state");
  for (size_t i = 0; i < blocks_.size(); ++i) {
    in.state = fresh ? nullptr : &state->layers[i];
    if (options.remat && grad_enabled()) {
      const Block* block = blocks_[i];
      modules::MixerInput shape_only = in;  // everything but x, which the checkpoint passes
      TensorList y = checkpoint(
          [block, shape_only](const TensorList& xs) {
            modules::MixerInput bi = shape_only;
            bi.x = xs[0];
            return TensorList{block->forward(bi).y};
          },
          {in.x});
      in.x = y[0];
      out.state.layers.emplace_back();
      continue;
    }
    modules::MixerOutput r = blocks_[i]->forward(in);
    in.x = r.y;
    out.state.layers.push_back(std::move(r.state));
  }
  Tensor h = norm->forward(in.x);
  Tensor logits = lm_head      ? lm_head->forward(h)
                  : tied_head_ ? modules::packed_linear(h, *tied_head_, "LMModel")
                               : matmul(h, transpose(embeddings->weight, 0, 1));
  out.logits = options.mask.defined() ? core::unpack(logits, packing) : logits;
  if (options.return_hidden) out.hidden = options.mask.defined() ? core::unpack(h, packing) : h;
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

void LMModel::set_weight_format(WeightFormat format) {
  for_each_module([&](modules::Module& m) {
    if (auto* linear = dynamic_cast<modules::Linear*>(&m)) linear->pack_weight(format);
  });
  tied_head_.reset();
  if (!lm_head && format != WeightFormat::f32) {
    const Tensor w = to_dtype(embeddings->weight.detach(), DType::f32).contiguous();
    tied_head_ =
        std::make_shared<const PackedWeight>(pack_weight(w.data<float>(), config_.vocab_size, config_.d_model, format));
  }
  weight_format_ = format;
}

int64_t LMModel::weight_bytes_per_token() const {
  int64_t bytes = 0;
  std::set<const TensorImpl*> packed;
  const_cast<LMModel*>(this)->for_each_module([&](modules::Module& m) {
    auto* linear = dynamic_cast<modules::Linear*>(&m);
    if (!linear || linear->weight_format() == WeightFormat::f32) return;
    packed.insert(linear->weight.impl());
    const int64_t n = linear->weight.numel();
    bytes += linear->weight_format() == WeightFormat::bf16 ? 2 * n : n + 4 * linear->out_features();
  });
  for (const auto& [name, p] : parameters()) {
    if (packed.count(p.impl()) || p.impl() == embeddings->weight.impl()) continue;
    bytes += p.numel() * static_cast<int64_t>(dtype_size(p.dtype()));
  }
  const int64_t V = config_.vocab_size, D = config_.d_model;
  if (!lm_head) bytes += tied_head_ ? tied_head_->bytes() : V * D * 4;  // the tied head reads the whole table
  return bytes + D * 4;                                                 // and the lookup one row
}

}  // namespace lnx::models
