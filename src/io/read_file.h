// Reading whole files that users name (text data, chat templates, configs, JSON): a path that
// is missing, a directory, or not a regular file (a device such as /dev/zero, a pipe) is an
// IOError naming it, and so is a file larger than the caller's bound, before anything is read.
#pragma once

#include <cstdint>
#include <string>

namespace lnx::io {

// IOError "[op] cannot read 'path': <why>" unless path is a readable regular file (symlinks
// followed) of at most max_bytes; returns its size.
uint64_t check_readable_file(const std::string& op, const std::string& path, uint64_t max_bytes = UINT64_MAX);

// The bytes of path, after check_readable_file (IOError when reading fails part-way).
std::string read_file(const std::string& op, const std::string& path, uint64_t max_bytes = UINT64_MAX);

}  // namespace lnx::io
