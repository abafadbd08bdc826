#include "io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "tensor/error.h"

namespace lnx::io {

namespace {

std::atomic<uint64_t> g_tmp_counter{0};

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;  // best effort: the data is written; durability needs the sync
  (void)::fsync(fd);
  ::close(fd);
}

[[noreturn]] void fail(const std::string& op, const std::string& path, const std::string& step, int err) {
  throw IOError(fmt::format("[{}] cannot write '{}': {} failed: {}", op, path, step, std::strerror(err)));
}

}  // namespace

void AtomicFileSink::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t(1) << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(op_, path_, fmt::format("writing '{}'", tmp_), errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

namespace {

// Removes "<path>.tmp.<pid>.<n>" files left by writers that were killed (their pid is gone): a
// token file's temporary is as big as the data.
void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string prefix = fs::path(path).filename().string() + ".tmp.";
  for (const auto& entry : fs::directory_iterator(parent_dir(path), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
    if (end && *end == '.' && pid != static_cast<long>(::getpid()) && !process_alive(pid)) fs::remove(entry.path(), ec);
  }
}

}  // namespace

void write_file_atomic(const std::string& op, const std::string& path,
                       const std::function<void(AtomicFileSink&)>& fill) {
  // The rename would replace whatever is at path: a device (/dev/null), a directory's entry, a
  // pipe. Only a regular file (or nothing) is replaced.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw IOError(fmt::format("[{}] cannot write '{}': it exists and is not a regular file ({})", op, path,
                              S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket"));
  remove_stale_temporaries(path);
  // A unique temporary name in the target's directory (pid + counter, created exclusively).
  int fd = -1;
  std::string tmp;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = fmt::format("{}.tmp.{}.{}", path, static_cast<long>(::getpid()), g_tmp_counter.fetch_add(1));
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt > 100))
      fail(op, path, fmt::format("creating temporary file '{}'", tmp), errno);
  }
  try {
    AtomicFileSink sink(fd, op, path, tmp);
    fill(sink);
    if (::fsync(fd) != 0) fail(op, path, fmt::format("fsync of '{}'", tmp), errno);
    const int closing = fd;
    fd = -1;
    if (::close(closing) != 0) fail(op, path, fmt::format("closing '{}'", tmp), errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail(op, path, fmt::format("renaming '{}' onto it", tmp), errno);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename durable (best effort: the new file is already in place).
  const int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& op, const std::string& path, std::string_view bytes) {
  write_file_atomic(op, path, [&](AtomicFileSink& out) { out.write(bytes.data(), bytes.size()); });
}

void write_directory_atomic(const std::string& op, const std::string& dir,
                            const std::function<void(const std::string& tmp_dir)>& fill) {
  namespace fs = std::filesystem;
  LNX_CHECK(!dir.empty(), ValueError, "[{}] empty directory name", op);
  const std::string clean = fs::path(dir).lexically_normal().string();
  const std::string base = clean.size() > 1 && clean.back() == '/' ? clean.substr(0, clean.size() - 1) : clean;
  const std::string tmp = base + ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  // Leftovers of writes killed half-way (other pids) are removed.
  const fs::path parent = fs::path(base).has_parent_path() ? fs::path(base).parent_path() : fs::path(".");
  const std::string stem = fs::path(base).filename().string() + ".tmp.";
  for (const auto& entry : fs::directory_iterator(parent, ec))
    if (entry.path().filename().string().rfind(stem, 0) == 0) fs::remove_all(entry.path(), ec);
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  LNX_CHECK(!ec, IOError, "[{}] cannot create '{}': {}", op, tmp, ec.message());
  try {
    fill(tmp);
    fsync_path(tmp, true);
    if (fs::exists(base)) {
      LNX_CHECK(fs::is_directory(base), IOError, "[{}] '{}' exists and is not a directory", op, base);
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, base.c_str(), RENAME_EXCHANGE) != 0) {
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
          throw IOError(fmt::format("[{}] cannot replace '{}': {}", op, base, std::strerror(errno)));
        const std::string old = base + ".old." + std::to_string(::getpid());
        if (::rename(base.c_str(), old.c_str()) != 0 || ::rename(tmp.c_str(), base.c_str()) != 0)
          throw IOError(fmt::format("[{}] cannot replace '{}': {}", op, base, std::strerror(errno)));
        fs::remove_all(old, ec);
      } else {
        fs::remove_all(tmp, ec);
      }
    } else if (::rename(tmp.c_str(), base.c_str()) != 0) {
      throw IOError(fmt::format("[{}] cannot create '{}': {}", op, base, std::strerror(errno)));
    }
    fsync_path(fs::absolute(base).parent_path().string(), true);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

void create_directories(const std::string& op, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  LNX_CHECK(!ec, IOError, "[{}] cannot create directory '{}': {}", op, dir, ec.message());
  LNX_CHECK(fs::is_directory(dir, ec), IOError, "[{}] cannot create directory '{}': a file of that name exists", op,
            dir);
  LNX_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0, IOError, "[{}] cannot write in directory '{}': {}", op, dir,
            std::strerror(errno));
}

}  // namespace lnx::io
