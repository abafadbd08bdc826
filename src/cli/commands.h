// The CLI's subcommands. Each add_*_command registers its options on the app; dispatch runs
// the one that was chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>

namespace lnx::cli {

struct DemoOptions {
  int steps = 300;
  uint64_t seed = 0;
  int threads = 0;  // 0 = default
};

void add_demo_command(CLI::App& app);
void add_info_command(CLI::App& app);
int run_demo(const DemoOptions& options);
int run_info();
int dispatch(CLI::App& app);

}  // namespace lnx::cli
