// Atomic file writes: the bytes go to a fresh temporary file next to the target, which is
// fsynced, closed and renamed onto it, then the directory is fsynced (best effort). Readers see
// the old file or the new one, never a torn one; a failed write leaves the old file untouched
// and no temporary file behind.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace lnx::io {

// Appends to the temporary file of write_file_atomic.
class AtomicFileSink {
 public:
  void write(const void* data, size_t n);

 private:
  friend void write_file_atomic(const std::string&, const std::string&, const std::function<void(AtomicFileSink&)>&);
  AtomicFileSink(int fd, const std::string& op, const std::string& path, const std::string& tmp)
      : fd_(fd), op_(op), path_(path), tmp_(tmp) {}
  int fd_;
  const std::string &op_, &path_, &tmp_;
};

// Whether a process of this pid is running (stale temporary files name the pid that wrote them).
bool process_alive(long pid);

// Writes path atomically with the bytes fill() hands to the sink. Temporary files of earlier
// writes to path whose process is gone (killed mid-write) are removed first. Failures raise IOError
// "[op] cannot write 'path': <step> failed: <reason>" (fill's own exceptions pass through,
// after the temporary file is removed).
void write_file_atomic(const std::string& op, const std::string& path,
                       const std::function<void(AtomicFileSink&)>& fill);

// Creates dir and its missing parents (e.g. a run directory). IOError "[op] cannot create
// directory 'dir': <reason>" when a part of the path is a file, creating fails, or dir is not
// writable.
void create_directories(const std::string& op, const std::string& dir);

// Writes path atomically with the given bytes (same errors).
void write_file_atomic(const std::string& op, const std::string& path, std::string_view bytes);

// Writes a whole directory atomically: fill(tmp_dir) writes the files into a fresh temporary
// directory next to dir, which is flushed and then swapped with dir in one rename (renameat2
// RENAME_EXCHANGE; filesystems without it get two renames, and a kill between them leaves the
// old directory complete under dir.old.<pid>). A kill at any moment leaves the old directory
// or the new one under the name, never a mix. Leftover temporary directories of killed writes
// are removed first. IOError "[op] …" naming the directory; fill's exceptions pass through
// after the temporary directory is removed.
void write_directory_atomic(const std::string& op, const std::string& dir,
                            const std::function<void(const std::string& tmp_dir)>& fill);

}  // namespace lnx::io
