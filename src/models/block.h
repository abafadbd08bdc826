// Block: pre-norm mixer and pre-norm SwiGLU MLP with residuals (the MLP is left out for
// Mamba-style blocks, MixerConfig::use_mlp = false):
//   h = x + mixer(attn_norm(x));   y = h + mlp(mlp_norm(h))
// x, h, y [B, T, D].
#pragma once

#include <memory>

#include "models/config.h"
#include "modules/mlp.h"
#include "modules/norm.h"

namespace lnx::models {

class Block : public modules::Module {
 public:
  Block(const ModelConfig& config, int64_t layer_idx, Generator& gen);
  modules::MixerOutput forward(const modules::MixerInput& in) const;
  const std::string& mixer_name() const { return mixer_name_; }
  double flops_per_token(int64_t context) const;

  modules::RMSNorm& attn_norm;
  modules::Mixer* mixer = nullptr;
  modules::RMSNorm* mlp_norm = nullptr;
  modules::SwiGLU* mlp = nullptr;

 private:
  std::string mixer_name_;
};

}  // namespace lnx::models
