// Runs the linearnexus binary (LNX_CLI_PATH, set by CMake) with arguments and captures its
// exit code and output.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace lnx {

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

inline CommandResult run_cli(const std::string& args) {
  std::string cmd = std::string(LNX_CLI_PATH) + " " + args + " 2>&1";
  CommandResult r{0, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace lnx
