// The run-directory lock (io/directory_lock.h): a second holder is refused with the holder's
// pid, the lock goes with its holder, and the trainers take it (issue 14 D4b: two runs could
// share one out_dir and delete each other's saves). The metrics log (io/log_file.h) reports a
// failed write.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "io/directory_lock.h"
#include "io/log_file.h"
#include "numeric.h"

namespace lnx::io {
namespace {

namespace fs = std::filesystem;

TEST(DirectoryLock, ASecondHolderIsRefusedWithThePid) {
  const std::string dir = ::testing::TempDir() + "lnx_lock_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::optional<DirectoryLock> first;
  first.emplace("train", dir);
  const std::string e = error_of<IOError>([&] { DirectoryLock second("train", dir); });
  EXPECT_NE(e.find("[train] '" + dir + "' is in use by process " + std::to_string(::getpid())), std::string::npos) << e;
  first.reset();
  EXPECT_EQ(error_of<IOError>([&] { DirectoryLock again("train", dir); }), "<no error>");
  EXPECT_NE(error_of<IOError>([&] { DirectoryLock none("train", dir + "/missing"); }).find("cannot lock"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(DirectoryLock, ADirectoryOfOtherFilesIsNotARunDirectory) {
  // Issue 14 (CLI sweep): `train --out /` wrote data/, last/, best/ and metrics.jsonl into /.
  const std::string dir = ::testing::TempDir() + "lnx_lock_other_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir + "/data");
  std::ofstream(dir + "/notes.txt") << "mine";
  const std::string e = error_of<IOError>([&] { DirectoryLock lock("train", dir); });
  EXPECT_NE(e.find("is not empty and holds no run"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir + "/.lock"));
  // A run's directory (one killed before its first save has .lock; an older one metrics.jsonl).
  for (const char* marker : {"metrics.jsonl", ".lock"}) {
    fs::remove_all(dir);
    fs::create_directories(dir + "/data");
    std::ofstream(dir + "/" + marker) << "";
    EXPECT_EQ(error_of<IOError>([&] { DirectoryLock lock("train", dir); }), "<no error>") << marker;
  }
  fs::remove_all(dir);
}

TEST(LogFile, AFailedWriteIsAnErrorNotALostRecord) {
  // Issue 14 D4: metrics.jsonl lost records on a full disk while the run exited 0. /dev/full
  // fails every write with ENOSPC.
  LogFile full("train", "/dev/full");
  const std::string e = error_of<IOError>([&] { full.append("{\"step\": 1}"); });
  EXPECT_NE(e.find("[train] cannot write to '/dev/full'"), std::string::npos) << e;
  const std::string path = ::testing::TempDir() + "lnx_log_" + std::to_string(::getpid());
  fs::remove(path);
  {
    LogFile ok("train", path);
    ok.append("a");
    ok.append("b");
  }
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "a\nb\n");
  fs::remove(path);
  EXPECT_NE(error_of<IOError>([&] { LogFile("train", "/no/such/dir/metrics.jsonl"); }).find("cannot open"),
            std::string::npos);
}

}  // namespace
}  // namespace lnx::io
