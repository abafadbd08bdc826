// Runs the linearnexus binary (LNX_CLI_PATH, set by CMake) with arguments and captures its
// exit code and output.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

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

// The "step" of a checkpoint's state file (e.g. out/last/trainer_state.json), −1 while there is none.
inline int64_t checkpoint_step(const std::string& state_json) {
  std::ifstream f(state_json);
  if (!f.good()) return -1;
  try {
    return nlohmann::json::parse(f)["step"].get<int64_t>();
  } catch (...) {
    return -1;
  }
}

// Starts `linearnexus args` in the background, SIGKILLs it once checkpoint_step(state_json) is at
// least `at` (or after two minutes) and returns the checkpoint's step then.
inline int64_t run_and_kill(const std::string& args, const std::string& state_json, int64_t at) {
  const std::string base = ::testing::TempDir() + "lnx_killed_" + std::to_string(::getpid());
  const std::string cmd =
      std::string(LNX_CLI_PATH) + " " + args + " > " + base + ".log 2>&1 & echo $! > " + base + ".pid";
  if (std::system(cmd.c_str()) != 0) return -1;
  pid_t pid = 0;
  std::ifstream(base + ".pid") >> pid;
  if (pid <= 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (checkpoint_step(state_json) < at && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  // Gone (reaped by init: its shell has exited) before anything reads what it left.
  for (int i = 0; i < 2000 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::remove((base + ".pid").c_str());
  std::remove((base + ".log").c_str());
  return checkpoint_step(state_json);
}

}  // namespace lnx
