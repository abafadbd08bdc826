// The CLI's subcommands. Each add_*_command registers a subcommand and its options on the
// app; when that subcommand is chosen, its parse callback stores what to run in `action`,
// which main() runs after parsing (so library errors are reported the same way for all).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>

#include "train/trainer.h"

namespace lnx::cli {

using Action = std::function<int()>;

// For flags such as --out: an empty value (an unset shell variable) is an error, not "unset".
inline const CLI::Validator kNonEmpty(
    [](std::string& value) { return value.empty() ? std::string("an empty value is not allowed") : std::string(); },
    "NONEMPTY");

void add_demo_command(CLI::App& app, Action& action);
void add_info_command(CLI::App& app, Action& action);
void add_list_command(CLI::App& app, Action& action);
void add_op_command(CLI::App& app, Action& action);
void add_train_command(CLI::App& app, Action& action);  // train_commands.cpp
void add_eval_command(CLI::App& app, Action& action);
void add_generate_commands(CLI::App& app, Action& action);      // generate, chat, bench (generate_commands.cpp)
void add_bench_train_command(CLI::App& bench, Action& action);  // bench train (bench_commands.cpp)
void add_convert_command(CLI::App& app, Action& action);        // convert_command.cpp
void add_logits_command(CLI::App& app, Action& action);         // logits_command.cpp
void add_posttrain_commands(CLI::App& app, Action& action);     // grpo, ppo, task (posttrain_commands.cpp)

struct ModelInfoOptions {
  std::string preset, config, checkpoint;
  int64_t context = 2048;
};
int run_model_info(const ModelInfoOptions& options);  // model_commands.cpp

// `list` sections (kernel_commands.cpp, model_commands.cpp).
void print_mechanisms();
void print_mixers();
void print_presets();

// The text `train` prints after a run: train.sample_tokens tokens generated from the trained
// model after train.sample_prompt (temperature 0.8, seed train.seed), decoded together with
// the prompt; empty for synthetic tasks or sample_tokens = 0 (train_commands.cpp).
std::string training_sample(const train::TrainResult& result, const train::TrainConfig& config);

// The default job (no subcommand): train the default model on the built-in corpus and
// generate from it (train_commands.cpp).
int run_default_job();

}  // namespace lnx::cli
