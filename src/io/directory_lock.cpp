#include "io/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "tensor/error.h"

namespace lnx::io {

namespace fs = std::filesystem;

DirectoryLock::DirectoryLock(const std::string& op, const std::string& dir) {
  // A run writes data/, last/, best/ and metrics.jsonl into its directory: a directory that
  // already holds other things (a home directory, /, a data folder) is not one to write into.
  std::error_code ec;
  if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec)) {
    bool run = false;
    for (const char* marker : {".lock", "last", "metrics.jsonl"}) run = run || fs::exists(fs::path(dir) / marker, ec);
    LNX_CHECK(run, IOError,
              "[{}] '{}' is not empty and holds no run (no .lock, last/ or metrics.jsonl): a run writes data/, "
              "last/, best/ and metrics.jsonl there; give a new or empty directory",
              op, dir);
  }
  const std::string path = dir + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  LNX_CHECK(fd_ >= 0, IOError, "[{}] cannot lock '{}': opening {} failed: {}", op, dir, path, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof(buf) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    const std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    if (err == EWOULDBLOCK)
      throw IOError(
          fmt::format("[{}] '{}' is in use by process {} (another run writes there; wait for it or choose "
                      "another directory)",
                      op, dir, holder.substr(0, holder.find('\n'))));
    throw IOError(fmt::format("[{}] cannot lock '{}': {}", op, dir, std::strerror(err)));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  // The pid is informative only (the lock is the flock): a failed write does not matter.
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace lnx::io
