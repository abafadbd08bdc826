// Helpers for the tokenizer tests: a scratch directory and a way to write a file into it.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace lnx::data::testing {

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "lnx_tokenizer_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name), std::ios::binary) << text;
    return file(name);
  }

 private:
  std::string path_;
};

// tests/fixtures/tokenizers/ of the source tree (LNX_SOURCE_DIR: tests/CMakeLists.txt).
inline std::string tokenizer_fixtures() { return LNX_SOURCE_DIR "/tests/fixtures/tokenizers"; }

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Text that exercises every UTF-8 length, combining marks, right-to-left scripts and emoji.
// (clang-format measures these characters differently on each pass: left as written.)
// clang-format off
inline const std::string kMultilingual =
    "Hello, world! 日本語のテキスト 中文，标点。 café vs cafe\xCC\x81 (e + U+0301) "
    "שלום עולם مرحبا بالعالم 😀👍🏽 🇯🇵 Ελληνικά кириллица ²½Ⅻ \t\n\n  "
    "end";
// clang-format on

}  // namespace lnx::data::testing
