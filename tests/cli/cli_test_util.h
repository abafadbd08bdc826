// Runs the linearnexus binary (LNX_CLI_PATH, set by CMake) with arguments and captures its
// exit code and output.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace lnx {

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

// merge_stderr: capture stderr too (else it is discarded); input: fed to stdin when non-empty.
inline CommandResult run_cli(const std::string& args, bool merge_stderr = true, const std::string& input = "") {
  std::string cmd = std::string(LNX_CLI_PATH) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  std::string input_path;
  if (!input.empty()) {
    input_path = std::string(::testing::TempDir()) + "lnx_cli_stdin_" + std::to_string(::getpid());
    std::ofstream(input_path) << input;
    cmd += " < " + input_path;
  }
  CommandResult r{0, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (!input_path.empty()) std::remove(input_path.c_str());
  return r;
}

}  // namespace lnx
