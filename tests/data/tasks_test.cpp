// The verifiable post-training tasks (data/tasks.h): examples are right and reproducible,
// rewards check the answer exactly (with the format bonus), bad names and options are errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "data/tasks.h"
#include "numeric.h"

namespace lnx::data {
namespace {

TEST(Tasks, ExamplesAreCorrectAndAFunctionOfSeedAndIndex) {
  auto add = make_task("addition", {3, 4});
  std::set<std::string> prompts;
  for (int64_t i = 0; i < 50; ++i) {
    const TaskExample ex = add->example(7, i);
    const size_t plus = ex.prompt.find('+');
    const int64_t a = std::stoll(ex.prompt.substr(0, plus)), b = std::stoll(ex.prompt.substr(plus + 1));
    EXPECT_EQ(ex.answer, std::to_string(a + b));
    EXPECT_LT(a, 1000);
    EXPECT_EQ(add->example(7, i).prompt, ex.prompt);
    prompts.insert(ex.prompt);
  }
  EXPECT_GT(prompts.size(), 45u);
  EXPECT_NE(add->example(8, 0).prompt + add->example(8, 1).prompt,
            add->example(7, 0).prompt + add->example(7, 1).prompt);
  const TaskExample s = make_task("sort", {1, 5})->example(1, 3);
  EXPECT_EQ(s.prompt.rfind("sort ", 0), 0u);
  auto numbers = [](const std::string& text) {
    std::vector<int64_t> v;
    for (size_t i = 0; i < text.size();)
      if (std::isdigit(static_cast<unsigned char>(text[i]))) {
        size_t used = 0;
        v.push_back(std::stoll(text.substr(i), &used));
        i += used;
      } else {
        ++i;
      }
    return v;
  };
  std::vector<int64_t> given = numbers(s.prompt), answer = numbers(s.answer);
  EXPECT_EQ(answer.size(), 5u);
  EXPECT_TRUE(std::is_sorted(answer.begin(), answer.end()));
  std::sort(given.begin(), given.end());
  EXPECT_EQ(answer, given);
  const TaskExample r = make_task("recall", {1, 6})->example(2, 0);
  const char key = r.prompt[r.prompt.size() - 2];
  EXPECT_NE(r.prompt.find(std::string(1, key) + "=" + r.answer + " "), std::string::npos) << r.prompt;
}

TEST(Tasks, HeldOutPromptsNeverAppearInTraining) {
  // 1-digit addition has 100 distinct prompts: drawing many examples of each split covers them,
  // and the two sets must still be disjoint (and both non-empty).
  for (const char* name : {"addition", "sort", "recall"}) {
    auto task = make_task(name, {1, 2});
    std::set<std::string> train, held;
    for (int64_t i = 0; i < 2000; ++i) {
      train.insert(task->example(3, i, Split::train).prompt);
      held.insert(task->example(3, i, Split::held_out).prompt);
    }
    EXPECT_FALSE(held.empty()) << name;
    for (const auto& p : held) {
      EXPECT_EQ(train.count(p), 0u) << name << ": " << p;
      EXPECT_EQ(VerifiableTask::split_of(p), Split::held_out);
    }
    EXPECT_GT(train.size(), held.size()) << name;
    EXPECT_EQ(task->example(3, 5, Split::held_out).prompt, task->example(3, 5, Split::held_out).prompt);
  }
}

TEST(Tasks, RewardsCheckTheAnswerExactly) {
  auto task = make_task("addition");
  const TaskExample ex{"12+30=", "42"};
  EXPECT_EQ(task->reward(ex, "42\nmore text"), 1.0);
  EXPECT_EQ(task->reward(ex, "42"), 1.0);
  EXPECT_EQ(task->reward(ex, "42 \n"), 0.0);
  EXPECT_EQ(task->reward(ex, "4\n"), 0.0);
  EXPECT_EQ(task->reward(ex, "42\n", 0.1), 1.1);
  EXPECT_EQ(task->reward(ex, "41\n", 0.1), 0.1);  // well formed, wrong
  EXPECT_EQ(task->reward(ex, "41", 0.1), 0.0);    // no newline: not well formed
  EXPECT_EQ(task->reward(ex, "x1\n", 0.1), 0.0);  // not digits
  EXPECT_DOUBLE_EQ(task_accuracy(*task, {ex, ex}, {"42\n", "7\n"}), 0.5);
}

TEST(Tasks, BadNamesAndOptionsAreErrors) {
  EXPECT_NE(error_of<ValueError>([] { make_task("chess"); }).find("tasks: addition, sort, recall"), std::string::npos);
  EXPECT_NE(error_of<ValueError>([] { make_task("addition", {0, 4}); }).find("digits = 0"), std::string::npos);
  EXPECT_NE(error_of<ValueError>([] { make_task("recall", {2, 40}); }).find("count = 40"), std::string::npos);
}

}  // namespace
}  // namespace lnx::data
