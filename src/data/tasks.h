// Verifiable tasks for post-training: generated prompts whose answers are checked exactly, the
// rewards of GRPO/PPO and the data of a built-in SFT job. Each example is a pure function of
// (task, seed, index), so runs resume exactly.
//
//   addition  "37+408="            → "445"        two numbers of 1 … digits digits
//   sort      "sort 7 2 9 4:"      → "2 4 7 9"    count numbers below 10^digits
//   recall    "a=3 k=8 q=1 ? k:"   → "8"          count key=value pairs, one queried
//
// Every task's prompts fall in two disjoint splits by a hash of the prompt text (one in eight is
// held out), so training data and rollouts (Split::train) never show a prompt that accuracy is
// measured on (Split::held_out), however many examples are drawn.
//
// A completion's answer is its text up to the first newline (or all of it); reward: 1 when that
// equals the answer exactly, else 0, plus format_bonus when the completion ends its answer with
// a newline and holds only the characters an answer may have (digits and spaces).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace lnx::data {

struct TaskExample {
  std::string prompt, answer;
};

struct TaskOptions {
  int64_t digits = 2;  // addition, sort: digits per number
  int64_t count = 4;   // sort: numbers; recall: pairs
};

enum class Split { train, held_out };

class VerifiableTask {
 public:
  virtual ~VerifiableTask() = default;
  virtual std::string name() const = 0;
  // Example `index` of the split: a pure function of (task, seed, index, split).
  TaskExample example(uint64_t seed, int64_t index, Split split = Split::train) const;
  static Split split_of(const std::string& prompt);
  // The reward of a completion of ex.prompt (see above).
  double reward(const TaskExample& ex, const std::string& completion, double format_bonus = 0.0) const;
  // The completion's answer: its text up to the first newline.
  static std::string answer_of(const std::string& completion);

 protected:
  virtual TaskExample draw(std::mt19937_64& rng) const = 0;  // one example from the task's distribution
};

// ValueError naming the tasks (addition, sort, recall) or the bad option.
std::unique_ptr<VerifiableTask> make_task(const std::string& name, const TaskOptions& options = {});
std::vector<std::string> task_names();

// Exact accuracy of completions[i] on examples[i].
double task_accuracy(const VerifiableTask& task, const std::vector<TaskExample>& examples,
                     const std::vector<std::string>& completions);

}  // namespace lnx::data
