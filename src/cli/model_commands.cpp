// The mixer and preset sections of `list`, and the model part of `info`.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "modules/mixer.h"
#include "tensor/error.h"

namespace lnx::cli {

void print_mixers() {
  for (const auto& name : modules::mixer_names()) {
    const modules::MixerSpec& s = modules::mixer_spec(name);
    fmt::print("{}\n  {}\n  kernel:  {}\n  options: {}\n\n", s.name, s.description, s.kernel, fmt::join(s.keys, ", "));
  }
}

void print_presets() {
  for (const auto& p : models::presets())
    fmt::print("{:<22} {}  [{}]\n", p.name, p.description, fmt::join(p.config.block_pattern, ", "));
}

namespace {

std::string human(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}G", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f}K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

}  // namespace

int run_model_info(const ModelInfoOptions& opt) {
  LNX_CHECK(opt.preset.empty() != opt.config.empty(), ValueError, "[info] give one of --preset and --config");
  LNX_CHECK(opt.context > 0, ValueError, "[info] --context must be positive, got {}", opt.context);
  const models::ModelConfig config =
      opt.preset.empty() ? models::load_model_config(opt.config) : models::preset_config(opt.preset);
  const models::LMModel model(config);
  fmt::print("\nmodel {}: {} blocks, d_model {}, vocab {}, {} embeddings\n", config.name, config.n_layer,
             config.d_model, config.vocab_size, config.tie_embeddings ? "tied" : "untied");
  fmt::print("{:>5}  {:<20} {:>10} {:>16}\n", "block", "mixer", "params", fmt::format("FLOPs/tok@{}", opt.context));
  for (size_t i = 0; i < model.num_blocks(); ++i) {
    const models::Block& b = model.block(i);
    fmt::print("{:>5}  {:<20} {:>10} {:>16}\n", i, b.mixer_name() + (b.mlp ? "+mlp" : ""), human(static_cast<double>(b.num_parameters())),
               human(b.flops_per_token(opt.context)));
  }
  const double fwd = model.flops_per_token(opt.context);
  fmt::print("embeddings {} parameters; LM head {}\n", human(static_cast<double>(model.embeddings->weight.numel())),
             model.lm_head ? human(static_cast<double>(model.lm_head->weight.numel())) + " parameters" : "tied");
  fmt::print("parameters: {} ({})\n", model.num_parameters(), human(static_cast<double>(model.num_parameters())));
  fmt::print("FLOPs/token at context {}: forward {}, forward+backward {}\n", opt.context, human(fwd), human(3 * fwd));
  return 0;
}

}  // namespace lnx::cli
