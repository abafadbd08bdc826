// The mixer and preset sections of `list`, and the model part of `info`.
#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "models/checkpoint.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "modules/mixer.h"
#include "tensor/error.h"

namespace lnx::cli {

namespace {

// "[lo … hi]" in the field's type (integers without a fraction).
std::string bounds_text(const core::FieldInfo& f) {
  if (!f.bounds) return "";
  auto num = [&](double x) { return f.type == "int" ? std::to_string(static_cast<int64_t>(x)) : fmt::format("{}", x); };
  return fmt::format("[{} … {}]", num(f.bounds->lo), num(f.bounds->hi));
}

}  // namespace

void print_mixers() {
  for (const auto& name : modules::mixer_names()) {
    const modules::MixerSpec& s = modules::mixer_spec(name);
    fmt::print("{}\n  {}\n  kernel:  {}\n  block:   {}\n  options ({}):\n", s.name, s.description, s.kernel,
               s.block_mlp ? "mixer, then a SwiGLU MLP (mlp: true)" : "mixer only (mlp: false)",
               s.defaults.type_name());
    const std::vector<core::FieldInfo> fields = s.defaults.fields();
    size_t width = 0;
    for (const auto& f : fields) width = std::max(width, f.name.size());
    for (const auto& f : fields)
      fmt::print("    {:<{}}  {:<6} {:<10} {}{}\n", f.name, width, f.type, f.default_value, f.help,
                 f.bounds ? "  " + bounds_text(f) : "");
    fmt::print("\n");
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
  LNX_CHECK(opt.preset.empty() + opt.config.empty() + opt.checkpoint.empty() == 2, ValueError,
            "[info] give one of --preset, --config and --checkpoint");
  LNX_CHECK(opt.context > 0, ValueError, "[info] --context must be positive, got {}", opt.context);
  const models::ModelConfig config = !opt.preset.empty()   ? models::preset_config(opt.preset)
                                     : !opt.config.empty() ? models::load_model_config(opt.config)
                                                           : models::load_directory_config(opt.checkpoint);
  const models::LMModel model(config);
  fmt::print("\nmodel {}: {} blocks, d_model {}, vocab {}, {} embeddings\n", config.name, config.n_layer,
             config.d_model, config.vocab_size, config.tie_embeddings ? "tied" : "untied");
  fmt::print("{:>5}  {:<28} {:>10} {:>16}\n", "block", "layer: mixer", "params",
             fmt::format("FLOPs/tok@{}", opt.context));
  for (size_t i = 0; i < model.num_blocks(); ++i) {
    const models::Block& b = model.block(i);
    const std::string layer = (b.layer_name() == b.mixer_name() ? "" : b.layer_name() + ": ") + b.mixer_name() +
                              (b.mlp   ? "+mlp"
                               : b.moe ? "+moe"
                                       : "");
    fmt::print("{:>5}  {:<28} {:>10} {:>16}\n", i, layer, human(static_cast<double>(b.num_parameters())),
               human(b.flops_per_token(opt.context)));
  }
  // Each layer's options, from its mixer's declaration.
  fmt::print("layers:\n");
  std::vector<std::string> shown;
  for (const auto& name : config.block_pattern) {
    if (std::find(shown.begin(), shown.end(), name) != shown.end()) continue;
    shown.push_back(name);
    const models::LayerSpec layer = config.layer(name);
    std::string options;
    for (const auto& f : layer.options.fields()) options += fmt::format(" {}={}", f.name, f.default_value);
    fmt::print("  {}: mixer={} mlp={}{}\n", name, layer.mixer, layer.mlp, options);
  }
  const double fwd = model.flops_per_token(opt.context);
  fmt::print("embeddings {} parameters; LM head {}\n", human(static_cast<double>(model.embeddings->weight.numel())),
             model.lm_head ? human(static_cast<double>(model.lm_head->weight.numel())) + " parameters" : "tied");
  fmt::print("parameters: {} ({})\n", model.num_parameters(), human(static_cast<double>(model.num_parameters())));
  fmt::print("FLOPs/token at context {}: forward {}, forward+backward {}\n", opt.context, human(fwd), human(3 * fwd));
  return 0;
}

}  // namespace lnx::cli
