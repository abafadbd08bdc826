// `linearnexus convert`: a Hugging Face model directory to a LinearNexus checkpoint and back.
// The tokenizer and generation files travel with the weights.
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "models/checkpoint.h"
#include "models/hf/hf.h"
#include "tensor/error.h"

namespace lnx::cli {

namespace {

namespace fs = std::filesystem;

struct ConvertOptions {
  std::string in, out, to, model_type;
};

// Files of a model directory besides the weights and the model config.
const char* const kCarried[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                "generation_config.json", "chat_template.jinja"};

void copy_carried(const std::string& from, const std::string& to) {
  for (const char* name : kCarried)
    if (fs::is_regular_file(fs::path(from) / name))
      fs::copy_file(fs::path(from) / name, fs::path(to) / name, fs::copy_options::overwrite_existing);
}

int run_convert(const ConvertOptions& o) {
  LNX_CHECK(fs::is_directory(o.in), IOError, "[convert] --in '{}' is not a directory", o.in);
  std::error_code ec;
  LNX_CHECK(!fs::exists(o.out, ec) || !fs::equivalent(o.in, o.out, ec), ValueError,
            "[convert] --out is the --in directory '{}'; write to another one", o.in);
  const bool from_hf = models::hf::is_hf_directory(o.in);
  const std::string to = o.to.empty() ? (from_hf ? "linearnexus" : "hf") : o.to;
  LNX_CHECK(to == "hf" || to == "linearnexus", ValueError, "[convert] --to must be hf or linearnexus, got '{}'", to);
  LNX_CHECK(o.model_type.empty() || to == "hf", ValueError, "[convert] --model-type is for --to hf");
  auto model = models::load_model(o.in);
  std::string kind;
  if (to == "hf") {
    models::hf::save_model(*model, o.out, o.model_type, [&](const std::string& tmp) { copy_carried(o.in, tmp); });
    kind = "Hugging Face " + (o.model_type.empty() ? models::hf::export_type(model->config()) : o.model_type);
  } else {
    models::save_model(*model, o.out, {}, [&](const std::string& tmp) { copy_carried(o.in, tmp); });
    kind = "LinearNexus checkpoint";
  }
  fmt::print("{} ({}, {} blocks, {} parameters) → {} ({})\n", o.in, from_hf ? "Hugging Face" : "LinearNexus",
             model->num_blocks(), model->num_parameters(), o.out, kind);
  return 0;
}

}  // namespace

void add_convert_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<ConvertOptions>();
  auto* cmd = app.add_subcommand(
      "convert",
      "Convert a Hugging Face model directory to a LinearNexus checkpoint, or a checkpoint to a Hugging Face "
      "directory that transformers loads (model types: " +
          fmt::format("{}", fmt::join(models::hf::model_types(), ", ")) + ")");
  cmd->add_option("--in", o->in, "the model directory to read (either kind)")->required();
  cmd->add_option("--out", o->out, "the directory to write (replaced atomically)")->required();
  cmd->add_option("--to", o->to, "hf or linearnexus (default: the other kind than --in)");
  cmd->add_option("--model-type", o->model_type, "the Hugging Face model_type to write (default: the one that fits)");
  cmd->callback([o, &action] { action = [o] { return run_convert(*o); }; });
}

}  // namespace lnx::cli
