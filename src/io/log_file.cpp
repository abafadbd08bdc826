#include "io/log_file.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "tensor/error.h"

namespace lnx::io {

LogFile::LogFile(const std::string& op, const std::string& path) : op_(op), path_(path) {
  out_.open(path, std::ios::app);
  LNX_CHECK(out_.good(), IOError, "[{}] cannot open '{}' for appending: {}", op, path, std::strerror(errno));
}

void LogFile::append(const std::string& line) {
  errno = 0;
  out_ << line << '\n' << std::flush;
  LNX_CHECK(out_.good(), IOError, "[{}] cannot write to '{}': {}", op_, path_,
            errno != 0 ? std::strerror(errno) : "the stream failed");
}

}  // namespace lnx::io
