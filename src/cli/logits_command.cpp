// `linearnexus logits`: a model's logits on token ids read from a safetensors file, written to
// another, to compare a model with another implementation (scripts/make_hf_fixtures.py
// --check-export compares them with transformers').
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/mode.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::cli {

namespace {

struct LogitsOptions {
  std::string checkpoint, input, output, mode = "auto", dtype = "f32";
};

int run_logits(const LogitsOptions& o) {
  LNX_CHECK(o.dtype == "f32" || o.dtype == "f64", ValueError, "[logits] --dtype must be f32 or f64, got '{}'", o.dtype);
  auto model = models::load_model(o.checkpoint);
  if (o.dtype == "f64") model->to(DType::f64);
  const SafetensorsFile in = load_safetensors(o.input);
  LNX_CHECK(in.tensors.contains("input_ids"), ValueError, "[logits] '{}' has no tensor input_ids [B, T]", o.input);
  const Tensor ids = to_dtype(in.tensors.at("input_ids"), DType::i64);
  LNX_CHECK(ids.dim() == 2, ShapeError, "[logits] input_ids must be [B, T], got {}", shape_str(ids.shape()));
  const std::vector<int64_t> v = ids.to_vector<int64_t>();
  for (int64_t id : v)
    LNX_CHECK(id >= 0 && id < model->config().vocab_size, ValueError,
              "[logits] input_ids holds {}, outside the model's vocabulary of {}", id, model->config().vocab_size);
  models::ForwardOptions f;
  f.mode = core::parse_mode(o.mode);
  const Tensor logits = model->forward(ids, nullptr, f).logits;
  save_safetensors(o.output, {{"logits", logits}});
  fmt::print("logits {} of {} ({}) written to {}\n", shape_str(logits.shape()), o.checkpoint, o.dtype, o.output);
  return 0;
}

}  // namespace

void add_logits_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<LogitsOptions>();
  auto* cmd = app.add_subcommand("logits",
                                 "Write a model's logits on the token ids of a safetensors file (input_ids [B, T]) "
                                 "to another safetensors file (logits [B, T, V])");
  cmd->add_option("--checkpoint", o->checkpoint, "a checkpoint or Hugging Face model directory")->required();
  cmd->add_option("--input", o->input, "safetensors file holding input_ids [B, T] (integers)")->required();
  cmd->add_option("--output", o->output, "safetensors file to write")->required();
  cmd->add_option("--mode", o->mode, "kernel form: auto, chunk or recurrent")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "compute dtype: f32 or f64")->capture_default_str();
  cmd->callback([o, &action] { action = [o] { return run_logits(*o); }; });
}

}  // namespace lnx::cli
