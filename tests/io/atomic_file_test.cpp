// Atomic file writes (io/atomic_file.h): temporaries that killed writers left behind are removed
// by the next write to the same file, those of running writers are kept (issue 14 D16: token
// files' temporaries, as big as the data, leaked after kills).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <sys/stat.h>

#include "io/atomic_file.h"
#include "io/read_file.h"
#include "numeric.h"

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

TEST(AtomicFile, OnlyARegularFileIsReplaced) {
  // Issue 14 (CLI sweep): `--state-out /dev/full` replaced the device node with a regular file
  // (the rename replaces whatever is at the path). A pipe and a directory stand in for devices.
  const std::string dir = ::testing::TempDir() + "lnx_atomic_special_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir + "/a_directory");
  ASSERT_EQ(::mkfifo((dir + "/a_pipe").c_str(), 0600), 0);
  for (const char* name : {"a_pipe", "a_directory"}) {
    const std::string path = dir + "/" + name;
    const std::string e = error_of<IOError>([&] { write_file_atomic("test", path, "bytes"); });
    EXPECT_NE(e.find("exists and is not a regular file"), std::string::npos) << e;
    EXPECT_FALSE(fs::is_regular_file(path)) << name;
  }
  EXPECT_TRUE(fs::is_fifo(dir + "/a_pipe"));
  write_file_atomic("test", dir + "/a_file", "one");
  write_file_atomic("test", dir + "/a_file", "two");  // a regular file is replaced
  EXPECT_EQ(read_file("test", dir + "/a_file"), "two");
  fs::remove_all(dir);
}

TEST(ReadFile, OnlyReadableRegularFilesWithinTheBoundAreRead) {
  // Issue 14 (CLI sweep): `--data /dev/zero` and `--config /dev/zero` read until memory ran out.
  const std::string dir = ::testing::TempDir() + "lnx_read_file_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_EQ(::mkfifo((dir + "/pipe").c_str(), 0600), 0);
  std::ofstream(dir + "/ten") << "0123456789";
  const std::pair<std::string, const char*> refused[] = {
      {dir + "/missing", "no such file"},  {dir, "it is a directory"}, {dir + "/pipe", "not a regular file"},
      {"/dev/zero", "not a regular file"}, {"", "an empty path"},
  };
  for (const auto& [path, why] : refused) {
    const std::string e = error_of<IOError>([&] { read_file("train", path); });
    EXPECT_NE(e.find(why), std::string::npos) << path << ": " << e;
  }
  EXPECT_NE(error_of<IOError>([&] { read_file("train", dir + "/ten", 9); }).find("is 10 bytes; at most 9"),
            std::string::npos);
  EXPECT_EQ(read_file("train", dir + "/ten", 10), "0123456789");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lnx::io
