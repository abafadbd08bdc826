// `linearnexus train`, `linearnexus eval` and the default job (no subcommand): train the
// default hybrid model on the built-in corpus, show the loss falling, save a checkpoint and
// print a generated sample.
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "cli/commands.h"
#include "dist/communicator.h"
#include "generate/generate.h"
#include "tensor/error.h"
#include "train/trainer.h"

namespace lnx::cli {

namespace {

struct TrainOptions {
  std::string config, preset, data, task, out, init_from, sft;
  int64_t steps = 0;
  std::vector<std::string> overrides;  // section.key=value
};

// The command-line shortcuts, as overrides (applied before the explicit key=value ones).
std::vector<std::string> shortcut_overrides(const TrainOptions& o) {
  LNX_CHECK((!o.data.empty()) + (!o.task.empty()) + (!o.sft.empty()) <= 1, ValueError,
            "[train] give one of --data, --sft and --task");
  LNX_CHECK(o.task.empty() || o.task == "mqar", ValueError, "[train] unknown --task '{}'; tasks: mqar", o.task);
  LNX_CHECK(o.preset.empty() || o.init_from.empty(), ValueError,
            "[train] give --preset (a new model) or --init-from (a model to fine-tune), not both");
  std::vector<std::string> out;
  if (!o.init_from.empty()) out.push_back("train.init_from=" + o.init_from);
  if (!o.preset.empty()) out.push_back("model.preset=" + o.preset);
  if (!o.data.empty()) {
    out.push_back("data.source=text");
    out.push_back("data.path=" + o.data);
  }
  if (!o.task.empty()) out.push_back("data.source=" + o.task);
  if (!o.sft.empty()) {
    out.push_back("data.source=sft");
    out.push_back("data.path=" + o.sft);
  }
  if (!o.out.empty()) out.push_back("train.out_dir=" + o.out);
  if (o.steps > 0) out.push_back("train.steps=" + std::to_string(o.steps));
  out.insert(out.end(), o.overrides.begin(), o.overrides.end());
  return out;
}

void print_result(const train::TrainResult& r, const train::TrainConfig& c) {
  if (r.resumed_from >= 0 && r.resumed_from >= r.steps) {
    // Nothing ran: no losses to report (zeros would read as a perfect model).
    fmt::print(
        "\n{}/last already holds step {} of {}: nothing to train (raise train.steps to go on, or choose another "
        "out_dir to start over)\n",
        c.train.out_dir, r.resumed_from, c.train.steps);
    return;
  }
  fmt::print("\ntrained {} steps{} in {:.0f} s ({:.1f}k tokens/s); last loss {:.4f}, validation loss {:.4f}", r.steps,
             r.resumed_from >= 0 ? fmt::format(" (resumed at {})", r.resumed_from) : "", r.seconds,
             static_cast<double>(r.tokens) / std::max(r.seconds, 1e-9) / 1e3, r.last_loss, r.val_loss);
  if (r.val_accuracy >= 0) fmt::print(", recall accuracy {:.1f}%", 100 * r.val_accuracy);
  if (r.unigram_entropy > 0) {
    const double below = 1 - r.val_loss / r.unigram_entropy;
    fmt::print(" (unigram entropy of the data {:.3f}: {:.0f}% {} it)", r.unigram_entropy, 100 * std::abs(below),
               below >= 0 ? "below" : "above");
  }
  fmt::print("\ncheckpoint: {}/last (best validation: {}/best)\n", c.train.out_dir, c.train.out_dir);
  const std::string sample = training_sample(r, c);
  if (!sample.empty()) fmt::print("\nsample:\n{}\n", sample);
}

int run_train(const TrainOptions& o) {
  const train::TrainConfig c = train::load_train_config(o.config, shortcut_overrides(o));
  const train::TrainResult r = train::train(c);
  if (dist::Communicator::world().root()) print_result(r, c);  // one report for a run of several ranks
  return 0;
}

struct EvalOptions {
  std::string checkpoint, config, data, task;
  int64_t batches = 16;
  std::vector<std::string> overrides;
};

int run_eval(const EvalOptions& o) {
  TrainOptions t;
  t.config = o.config;
  t.data = o.data;
  t.task = o.task;
  t.overrides = o.overrides;
  std::vector<std::string> overrides = shortcut_overrides(t);
  // Without a config, the run's own (train.yaml in the checkpoint) describes the data.
  std::string config = o.config;
  if (config.empty() && std::filesystem::exists(o.checkpoint + "/train.yaml")) config = o.checkpoint + "/train.yaml";
  const train::TrainConfig c = train::load_train_config(config, overrides);
  const train::EvalResult r = train::evaluate_checkpoint(o.checkpoint, c, o.batches);
  fmt::print("{}: loss {:.4f}, perplexity {:.3f} over {} tokens", o.checkpoint, r.loss, r.perplexity, r.tokens);
  if (r.accuracy >= 0) fmt::print(", recall accuracy {:.2f}%", 100 * r.accuracy);
  fmt::print("\n");
  return 0;
}

}  // namespace

std::string training_sample(const train::TrainResult& r, const train::TrainConfig& c) {
  if (!r.model || !r.tokenizer || c.train.sample_tokens <= 0) return "";
  generate::SamplingOptions so;
  so.max_new_tokens = c.train.sample_tokens;
  so.temperature = 0.8;
  so.seed = static_cast<uint64_t>(c.train.seed);
  const std::vector<int32_t> out = generate::generate(*r.model, r.sample_prompt, so);
  std::vector<int32_t> all = r.sample_prompt;
  all.insert(all.end(), out.begin(), out.end());
  return r.tokenizer->decode(all);
}

void add_train_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train",
                                 "Train a model: --config FILE.yaml and/or --preset NAME with --data FILE.txt "
                                 "or --task mqar; section.key=value overrides any setting");
  cmd->add_option("--config,-c", o->config, "training config (YAML: model, data, optimizer, schedule, train)");
  cmd->add_option("--preset", o->preset, "model preset (see `linearnexus list presets`)");
  cmd->add_option("--init-from", o->init_from,
                  "fine-tune: a checkpoint or Hugging Face model directory (its model, weights and tokenizer; fresh "
                  "optimizer and schedule)");
  cmd->add_option("--data", o->data, "a UTF-8 text file to train on");
  cmd->add_option("--task", o->task, "a synthetic task: mqar");
  cmd->add_option(
      "--sft", o->sft,
      "supervised fine-tuning on a JSON Lines file of {prompt, completion} or {messages} (data.source=sft)");
  cmd->add_option("--steps", o->steps, "optimizer steps")->check(CLI::PositiveNumber);
  cmd->add_option("--out", o->out, "run directory (checkpoints, metrics.jsonl)")->check(kNonEmpty);
  cmd->add_option("overrides", o->overrides, "section.key=value, e.g. optimizer.lr=1e-3 train.batch_size=32");
  cmd->callback([o, &action] { action = [o] { return run_train(*o); }; });
}

void add_eval_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Validation loss and perplexity (and MQAR accuracy) of a checkpoint");
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint directory (e.g. runs/default/best)")->required();
  cmd->add_option("--config,-c", o->config, "training config describing the data (default: the checkpoint's)");
  cmd->add_option("--data", o->data, "a UTF-8 text file");
  cmd->add_option("--task", o->task, "a synthetic task: mqar");
  cmd->add_option("--batches", o->batches, "validation batches")->capture_default_str();
  cmd->add_option("overrides", o->overrides, "section.key=value overrides of the data settings");
  cmd->callback([o, &action] { action = [o] { return run_eval(*o); }; });
}

int run_default_job() {
  if (dist::Communicator::world().root())
    fmt::print(
        "linearnexus: training the default model ({}) on the built-in corpus; "
        "`linearnexus train --help` for more\n",
        train::kDefaultPreset);
  TrainOptions o;
  o.out = "runs/default";
  // About 8M tokens: under two minutes on 2 cores, enough for the loss to fall far below the
  // corpus's unigram entropy and for the sample to read like the corpus.
  o.overrides = {"train.steps=2000",          "train.batch_size=16",    "train.seq_len=256",
                 "train.eval_every=500",      "train.save_every=500",   "optimizer.lr=3e-3",
                 "schedule.warmup_steps=100", "schedule.total_steps=0", "train.sample_prompt=The "};
  return run_train(o);
}

}  // namespace lnx::cli
