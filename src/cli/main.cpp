// linearnexus: the command-line tool. Thin: parses arguments and calls the library.
// Every library error is caught here and printed as one line; the exit code is non-zero.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <ios>
#include <new>

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
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
      // Like every other refusal: one "error:" line and exit code 1 (CLI11's own codes vary).
      fmt::print(stderr, "error: {}\nrun with --help for the options\n", e.what());
      return 1;
    }
    return action ? action() : lnx::cli::run_default_job();
  } catch (const lnx::Error& e) {  // also from option callbacks during parsing
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {  // a path that cannot be examined (a symlink loop, …)
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::ios_base::failure& e) {  // reading a file failed (a directory where a file was expected, …)
    fmt::print(stderr, "error: reading a file failed: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "error: out of memory (the input or the model is too large for this machine's memory)\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "internal error: {}\n", e.what());
    return 2;
  }
}
