// Block: pre-norm mixer and pre-norm SwiGLU MLP (or sparse MoE) with residuals (the MLP is left
// out when the layer's `mlp` is false, as in Mamba blocks; models/config.h):
//   h = x + mixer(attn_norm(x));   y = h + mlp(mlp_norm(h))
// x, h, y [B, T, D].
#pragma once

#include <memory>

#include "models/config.h"
#include "modules/mlp.h"
#include "modules/moe.h"
#include "modules/norm.h"

namespace lnx::models {

class Block : public modules::Module {
 public:
  Block(const ModelConfig& config, int64_t layer_idx, Generator& gen);
  modules::MixerOutput forward(const modules::MixerInput& in) const;
  const std::string& mixer_name() const { return mixer_name_; }  // the mixer type
  const std::string& layer_name() const { return layer_name_; }  // its name in block_pattern
  double flops_per_token(int64_t context) const;

  modules::RMSNorm& attn_norm;
  modules::Mixer* mixer = nullptr;
  modules::RMSNorm* mlp_norm = nullptr;
  modules::SwiGLU* mlp = nullptr;     // the dense MLP, or
  modules::SparseMoE* moe = nullptr;  // a sparse MoE (layer moe.num_experts > 0), both named "mlp"

 private:
  std::string layer_name_, mixer_name_;
};

}  // namespace lnx::models
