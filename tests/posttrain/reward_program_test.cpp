// User reward programs (posttrain/reward_program.h): rewards come back in order; failing,
// hanging, silent or babbling programs are errors naming the command, and a hanging one is
// killed at the timeout.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "numeric.h"
#include "posttrain/reward_program.h"

namespace lnx::posttrain {
namespace {

const std::vector<std::pair<std::string, std::string>> kItems = {{"1+1=", "2\n"}, {"2+2=", "5"}, {"x", ""}};

TEST(RewardProgram, RewardsComeBackInOrder) {
  // The length of each JSON line: different for each item, so the order shows.
  const std::vector<double> r = run_reward_program("awk '{ print length($0) }'", kItems, 10);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], 36.0);  // {"prompt":"1+1=","completion":"2\n"} (the newline escaped)
  EXPECT_EQ(r[1], 34.0);
  EXPECT_EQ(r[2], 30.0);
  EXPECT_EQ(run_reward_program("cat > /dev/null; printf '0.5\\n-1\\n2e-1\\n'", kItems, 10),
            (std::vector<double>{0.5, -1, 0.2}));
}

TEST(RewardProgram, BadProgramsAreErrorsNamingTheCommand) {
  EXPECT_NE(error_of<ValueError>([] {
              run_reward_program("cat > /dev/null; exit 3", kItems, 10);
            }).find("'cat > /dev/null; exit 3' exited with 3"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] {
              run_reward_program("head -n 1 > /dev/null; echo 1", kItems, 10);
            }).find("wrote 1 numbers for 3 completions"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] {
              run_reward_program("cat > /dev/null; printf '1\\nyes\\n1\\n'", kItems, 10);
            }).find("wrote 'yes' on line 2"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] { run_reward_program("no_such_program_xyz", kItems, 10); }).find("exited with 127"),
            std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(
      error_of<ValueError>([] { run_reward_program("sleep 20", kItems, 0.5); }).find("did not finish within 0.5 s"),
      std::string::npos);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

// Whether pid is gone (or a zombie nobody reaped yet).
bool gone(long pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  return close == std::string::npos || text.substr(close + 2, 1) == "Z";
}

TEST(RewardProgram, AProgramKilledAtTheTimeoutTakesItsChildrenWithIt) {
  // Issue 14 (second CLI sweep): only the shell was killed; its `sleep` lived on, holding the
  // caller's stderr, so `out=$(linearnexus grpo …)` blocked until it ended.
  const std::string pid_file = ::testing::TempDir() + "lnx_reward_child.pid";
  std::filesystem::remove(pid_file);
  const std::string command = "cat > /dev/null; sleep 1000 & echo $! > " + pid_file + "; wait";
  EXPECT_NE(error_of<ValueError>([&] { run_reward_program(command, kItems, 1.0); }).find("did not finish"),
            std::string::npos);
  long child = 0;
  std::ifstream(pid_file) >> child;
  ASSERT_GT(child, 0);
  bool dead = false;
  for (int i = 0; i < 100 && !dead; ++i) {
    dead = gone(child);
    if (!dead) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(dead) << "the program's child " << child << " still runs";
  if (!dead) ::kill(static_cast<pid_t>(child), SIGKILL);
  std::filesystem::remove(pid_file);
}

}  // namespace
}  // namespace lnx::posttrain
