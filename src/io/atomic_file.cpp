#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

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

void write_file_atomic(const std::string& op, const std::string& path,
                       const std::function<void(AtomicFileSink&)>& fill) {
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

}  // namespace lnx::io
