#include "io/read_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "tensor/error.h"

namespace lnx::io {

namespace fs = std::filesystem;

uint64_t check_readable_file(const std::string& op, const std::string& path, uint64_t max_bytes) {
  LNX_CHECK(!path.empty(), IOError, "[{}] no file named (an empty path)", op);
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  LNX_CHECK(fs::exists(st), IOError, "[{}] cannot read '{}': no such file", op, path);
  LNX_CHECK(!fs::is_directory(st), IOError, "[{}] cannot read '{}': it is a directory", op, path);
  LNX_CHECK(fs::is_regular_file(st), IOError, "[{}] cannot read '{}': not a regular file (a device or a pipe)", op,
            path);
  LNX_CHECK(::access(path.c_str(), R_OK) == 0, IOError, "[{}] cannot read '{}': {}", op, path, std::strerror(errno));
  const uint64_t size = fs::file_size(path, ec);
  LNX_CHECK(!ec, IOError, "[{}] cannot read '{}': {}", op, path, ec.message());
  LNX_CHECK(size <= max_bytes, IOError, "[{}] '{}' is {} bytes; at most {} are accepted", op, path, size, max_bytes);
  return size;
}

std::string read_file(const std::string& op, const std::string& path, uint64_t max_bytes) {
  const uint64_t size = check_readable_file(op, path, max_bytes);
  std::ifstream in(path, std::ios::binary);
  LNX_CHECK(in.good(), IOError, "[{}] cannot open '{}'", op, path);
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  LNX_CHECK(static_cast<uint64_t>(in.gcount()) == size, IOError, "[{}] error while reading '{}'", op, path);
  return bytes;
}

}  // namespace lnx::io
