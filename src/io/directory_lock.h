// An exclusive lock on a run directory: flock(2) on dir/.lock, a file holding the holder's pid.
// A second holder — another process or another lock in this one — gets IOError naming the
// directory and the holder's pid. The kernel drops the lock when its process ends in any way
// (SIGKILL included), so a killed run never leaves a stale lock behind.
#pragma once

#include <string>

namespace lnx::io {

class DirectoryLock {
 public:
  // Locks dir (which must exist). IOError "[op] 'dir' is in use by process N (…)" when held, and
  // IOError when dir is not empty but holds no run (no .lock, last/ or metrics.jsonl): runs write
  // their files there, so a directory of other files (/, a home directory) is refused.
  DirectoryLock(const std::string& op, const std::string& dir);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace lnx::io
