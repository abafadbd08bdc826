// Atomic file writes (io/atomic_file.h): temporaries that killed writers left behind are removed
// by the next write to the same file, those of running writers are kept (issue 14 D16: token
// files' temporaries, as big as the data, leaked after kills).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "io/atomic_file.h"

namespace lnx::io {
namespace {

namespace fs = std::filesystem;

TEST(AtomicFile, StaleTemporariesOfDeadWritersAreRemoved) {
  const std::string dir = ::testing::TempDir() + "lnx_atomic_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  EXPECT_FALSE(process_alive(dead));
  EXPECT_TRUE(process_alive(::getpid()));
  const std::string path = dir + "/tokens.bin";
  const std::string stale = path + ".tmp." + std::to_string(dead) + ".0";
  const std::string running = path + ".tmp.1.0";                                    // pid 1 runs
  const std::string other = dir + "/other.bin.tmp." + std::to_string(dead) + ".0";  // another file's
  for (const auto& f : {stale, running, other}) std::ofstream(f) << "partial";
  write_file_atomic("test", path, std::string_view("done"));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(running));
  EXPECT_TRUE(fs::exists(other));
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "done");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lnx::io
