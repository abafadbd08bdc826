#include "models/block.h"

#include "tensor/ops.h"

namespace lnx::models {

Block::Block(const ModelConfig& config, int64_t layer_idx, Generator& gen)
    : attn_norm(add_module(
          "attn_norm", std::make_unique<modules::RMSNorm>(config.d_model, config.norm_eps, config.zero_centered_norm))),
      layer_name_(config.layer_names()[static_cast<size_t>(layer_idx)]) {
  const LayerSpec layer = config.layer(layer_name_);
  mixer_name_ = layer.mixer;
  modules::ModelDims dims;
  dims.d_model = config.d_model;
  dims.norm_eps = config.norm_eps;
  dims.zero_centered_norm = config.zero_centered_norm;
  dims.layer_idx = layer_idx;
  dims.n_layer = config.n_layer;
  dims.init_std = config.init_std;
  mixer = &add_module("mixer", modules::make_mixer(mixer_name_, layer.options, dims, gen));
  if (layer.mlp) {
    mlp_norm = &add_module(
        "mlp_norm", std::make_unique<modules::RMSNorm>(config.d_model, config.norm_eps, config.zero_centered_norm));
    const int64_t hidden =
        config.mlp_hidden > 0 ? config.mlp_hidden : modules::swiglu_hidden(config.d_model, config.mlp_ratio);
    if (layer.moe.num_experts > 0)
      moe = &add_module("mlp",
                        std::make_unique<modules::SparseMoE>(config.d_model, layer.moe, hidden, gen, config.init_std));
    else
      mlp = &add_module("mlp", std::make_unique<modules::SwiGLU>(config.d_model, hidden, gen, config.init_std));
  }
}

modules::MixerOutput Block::forward(const modules::MixerInput& in) const {
  modules::MixerInput mixed = in;
  mixed.x = attn_norm.forward(in.x);
  modules::MixerOutput out = mixer->forward(mixed);
  Tensor h = add(in.x, out.y);
  out.y = mlp ? add(h, mlp->forward(mlp_norm->forward(h))) : moe ? add(h, moe->forward(mlp_norm->forward(h))) : h;
  return out;
}

double Block::flops_per_token(int64_t context) const {
  double f = mixer->flops_per_token(context);
  if (mlp) f += 2.0 * 3.0 * static_cast<double>(mlp->hidden()) * static_cast<double>(attn_norm.weight.size(0));
  if (moe) f += moe->flops_per_token();
  return f;
}

}  // namespace lnx::models
