// The run-directory lock (io/directory_lock.h): a second holder is refused with the holder's
// pid, the lock goes with its holder, and the trainers take it (issue 14 D4b: two runs could
// share one out_dir and delete each other's saves).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <optional>

#include "io/directory_lock.h"
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

}  // namespace
}  // namespace lnx::io
