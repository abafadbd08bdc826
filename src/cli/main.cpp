// linearnexus: the command-line tool. Thin: parses arguments and calls the library.
// Every library error is caught here and printed as one line; the exit code is non-zero.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "tensor/error.h"

int main(int argc, char** argv) {
  CLI::App app{"LinearNexus: linear-attention, state-space and hybrid language models on CPU"};
  app.require_subcommand(0, 1);
  app.footer(
      "Without a subcommand: the default job — train the default hybrid model on the built-in corpus, save a "
      "checkpoint under runs/default and print a generated sample.");
  lnx::cli::Action action;
  lnx::cli::add_demo_command(app, action);
  lnx::cli::add_info_command(app, action);
  lnx::cli::add_list_command(app, action);
  lnx::cli::add_op_command(app, action);
  lnx::cli::add_train_command(app, action);
  lnx::cli::add_eval_command(app, action);
  lnx::cli::add_generate_commands(app, action);
  lnx::cli::add_convert_command(app, action);
  lnx::cli::add_logits_command(app, action);
  lnx::cli::add_posttrain_commands(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return action ? action() : lnx::cli::run_default_job();
  } catch (const lnx::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "internal error: {}\n", e.what());
    return 2;
  }
}
