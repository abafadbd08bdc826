// An append-only log such as metrics.jsonl: each line is written and flushed at once, and a
// write that fails (a full disk, …) is an IOError naming the file — never a record lost while
// the run goes on and exits 0.
#pragma once

#include <fstream>
#include <string>

namespace lnx::io {

class LogFile {
 public:
  LogFile(const std::string& op, const std::string& path);  // opens path for appending (IOError)
  void append(const std::string& line);                     // line + "\n", flushed (IOError)

 private:
  std::string op_, path_;
  std::ofstream out_;
};

}  // namespace lnx::io
