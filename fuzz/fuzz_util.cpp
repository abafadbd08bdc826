#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fuzz_util_internal.h"

namespace lnx::fuzz {

namespace fs = std::filesystem;

const std::string& scratch_dir() {
  struct Scratch {
    std::string dir = (fs::temp_directory_path() / ("lnx-fuzz-" + std::to_string(::getpid()))).string();
    Scratch() { fs::create_directories(dir); }
    ~Scratch() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  };
  static const Scratch scratch;
  return scratch.dir;
}

std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::abort();  // the harness itself failed (disk full): not the loader's finding
  return path;
}

}  // namespace lnx::fuzz
