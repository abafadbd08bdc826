#include "posttrain/reward_program.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace lnx::posttrain {

namespace {

[[noreturn]] void fail(const std::string& command, const std::string& why) {
  throw ValueError(fmt::format("[reward program] '{}' {}", command, why));
}

// Waits for the child and reports how it ended ("" when it exited with 0).
std::string reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status) == 0 ? "" : fmt::format("exited with {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return "ended abnormally";
}

}  // namespace

std::vector<double> run_reward_program(const std::string& command,
                                       const std::vector<std::pair<std::string, std::string>>& items,
                                       double timeout_s) {
  LNX_CHECK(!command.empty(), ValueError, "[reward program] the command is empty");
  LNX_CHECK(timeout_s > 0, ValueError, "[reward program] timeout must be positive, got {}", timeout_s);
  std::string input;
  for (const auto& [prompt, completion] : items)
    // Sampled text may hold invalid UTF-8 (a multi-byte character cut by the token limit): U+FFFD.
    input += nlohmann::json{{"prompt", prompt}, {"completion", completion}}.dump(
                 -1, ' ', false, nlohmann::json::error_handler_t::replace) +
             "\n";
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0)
    fail(command, fmt::format("could not be started: pipe: {}", std::strerror(errno)));
  const pid_t pid = ::fork();
  if (pid < 0) fail(command, fmt::format("could not be started: fork: {}", std::strerror(errno)));
  if (pid == 0) {  // the child: stdin and stdout are the pipes; its own process group
    ::setpgid(0, 0);
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: whichever runs first, the group exists before any kill
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  int to_child = in_pipe[1];
  const int from_child = out_pipe[0];
  ::fcntl(to_child, F_SETFL, O_NONBLOCK);
  ::signal(SIGPIPE, SIG_IGN);  // a program that stops reading early must not kill us
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  size_t written = 0;
  std::string output;
  bool open = true;
  if (input.empty()) {
    ::close(to_child);
    to_child = -1;
  }
  while (open) {
    const double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      // The whole group: the shell and what it started (a `sleep` would otherwise live on,
      // holding our stderr, and block a caller that reads it).
      ::kill(-pid, SIGKILL);
      reap(pid);
      if (to_child >= 0) ::close(to_child);
      ::close(from_child);
      fail(command, fmt::format("did not finish within {} s (killed); it must write one number per line", timeout_s));
    }
    pollfd fds[2] = {{from_child, POLLIN, 0}, {to_child, POLLOUT, 0}};
    const int n = ::poll(fds, to_child >= 0 ? 2 : 1, static_cast<int>(std::ceil(left * 1000)));
    if (n < 0 && errno != EINTR) break;
    if (to_child >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = ::write(to_child, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();  // it closed its input
      if (written == input.size()) {
        ::close(to_child);
        to_child = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      const ssize_t r = ::read(from_child, buf, sizeof(buf));
      if (r > 0) output.append(buf, static_cast<size_t>(r));
      if (r == 0) open = false;
    }
  }
  if (to_child >= 0) ::close(to_child);
  ::close(from_child);
  const std::string ended = reap(pid);
  if (!ended.empty()) fail(command, ended);
  std::vector<double> rewards;
  std::istringstream lines(output);
  std::string line;
  for (size_t i = 1; std::getline(lines, line); ++i) {
    char* end = nullptr;
    const double v = std::strtod(line.c_str(), &end);
    while (end && (*end == ' ' || *end == '\r' || *end == '\t')) ++end;
    if (line.empty() || !end || *end != '\0' || !std::isfinite(v))
      fail(command, fmt::format("wrote '{}' on line {}, not a finite number", line, i));
    rewards.push_back(v);
  }
  if (rewards.size() != items.size())
    fail(command,
         fmt::format("wrote {} numbers for {} completions (one per line expected)", rewards.size(), items.size()));
  return rewards;
}

}  // namespace lnx::posttrain
