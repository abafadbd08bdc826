#include "data/tasks.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tensor/error.h"

namespace lnx::data {

namespace {

// A generator for example `index` of a seed: independent of every other example.
std::mt19937_64 example_rng(uint64_t seed, int64_t index) {
  std::seed_seq s{static_cast<uint64_t>(seed), static_cast<uint64_t>(index), uint64_t{0x7a5c}};
  return std::mt19937_64(s);
}

int64_t number_below(std::mt19937_64& rng, int64_t digits) {
  int64_t limit = 1;
  for (int64_t d = 0; d < digits; ++d) limit *= 10;
  return std::uniform_int_distribution<int64_t>(0, limit - 1)(rng);
}

class Addition : public VerifiableTask {
 public:
  explicit Addition(int64_t digits) : digits_(digits) {}
  std::string name() const override { return "addition"; }
  TaskExample draw(std::mt19937_64& rng) const override {
    const int64_t a = number_below(rng, digits_), b = number_below(rng, digits_);
    return {fmt::format("{}+{}=", a, b), std::to_string(a + b)};
  }

 private:
  int64_t digits_;
};

class Sort : public VerifiableTask {
 public:
  Sort(int64_t digits, int64_t count) : digits_(digits), count_(count) {}
  std::string name() const override { return "sort"; }
  TaskExample draw(std::mt19937_64& rng) const override {
    std::vector<int64_t> v(static_cast<size_t>(count_));
    for (auto& x : v) x = number_below(rng, digits_);
    TaskExample ex{fmt::format("sort {}:", fmt::join(v, " ")), ""};
    std::sort(v.begin(), v.end());
    ex.answer = fmt::format("{}", fmt::join(v, " "));
    return ex;
  }

 private:
  int64_t digits_, count_;
};

class Recall : public VerifiableTask {
 public:
  explicit Recall(int64_t count) : count_(count) {}
  std::string name() const override { return "recall"; }
  TaskExample draw(std::mt19937_64& rng) const override {
    std::string keys = "abcdefghijklmnopqrstuvwxyz";
    std::shuffle(keys.begin(), keys.end(), rng);
    std::vector<std::string> pairs;
    std::vector<int64_t> values;
    for (int64_t i = 0; i < count_; ++i) {
      values.push_back(number_below(rng, 1));
      pairs.push_back(fmt::format("{}={}", keys[static_cast<size_t>(i)], values.back()));
    }
    const int64_t q = std::uniform_int_distribution<int64_t>(0, count_ - 1)(rng);
    return {fmt::format("{} ? {}:", fmt::join(pairs, " "), keys[static_cast<size_t>(q)]),
            std::to_string(values[static_cast<size_t>(q)])};
  }

 private:
  int64_t count_;
};

}  // namespace

Split VerifiableTask::split_of(const std::string& prompt) {
  // FNV-1a, then splitmix64's finaliser (FNV's high bits barely depend on a short prompt's
  // differences); the same split on every platform.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : prompt) h = (h ^ c) * 0x100000001b3ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h % 8 == 0 ? Split::held_out : Split::train;
}

TaskExample VerifiableTask::example(uint64_t seed, int64_t index, Split split) const {
  auto rng = example_rng(seed, index);
  for (int attempt = 0; attempt < 10000; ++attempt) {
    TaskExample ex = draw(rng);
    if (split_of(ex.prompt) == split) return ex;
  }
  throw ValueError(fmt::format("[tasks] {}: no {} example in 10000 draws (too few distinct prompts)", name(),
                               split == Split::train ? "training" : "held-out"));
}

std::string VerifiableTask::answer_of(const std::string& completion) {
  const size_t nl = completion.find('\n');
  return nl == std::string::npos ? completion : completion.substr(0, nl);
}

double VerifiableTask::reward(const TaskExample& ex, const std::string& completion, double format_bonus) const {
  const std::string answer = answer_of(completion);
  double r = answer == ex.answer ? 1.0 : 0.0;
  const bool well_formed = completion.size() > answer.size() && !answer.empty() &&
                           answer.find_first_not_of("0123456789 ") == std::string::npos;
  if (well_formed) r += format_bonus;
  return r;
}

std::unique_ptr<VerifiableTask> make_task(const std::string& name, const TaskOptions& o) {
  LNX_CHECK(o.digits >= 1 && o.digits <= 9, ValueError, "[tasks] digits = {}: expected 1 … 9", o.digits);
  LNX_CHECK(o.count >= 1 && o.count <= 26, ValueError, "[tasks] count = {}: expected 1 … 26", o.count);
  if (name == "addition") return std::make_unique<Addition>(o.digits);
  if (name == "sort") return std::make_unique<Sort>(o.digits, o.count);
  if (name == "recall") return std::make_unique<Recall>(o.count);
  throw ValueError(fmt::format("[tasks] unknown task '{}'; tasks: {}", name, fmt::join(task_names(), ", ")));
}

std::vector<std::string> task_names() { return {"addition", "sort", "recall"}; }

double task_accuracy(const VerifiableTask& task, const std::vector<TaskExample>& examples,
                     const std::vector<std::string>& completions) {
  LNX_CHECK(examples.size() == completions.size() && !examples.empty(), ValueError,
            "[tasks] {} examples but {} completions", examples.size(), completions.size());
  double correct = 0;
  for (size_t i = 0; i < examples.size(); ++i) correct += task.reward(examples[i], completions[i]) >= 1.0 ? 1 : 0;
  return correct / static_cast<double>(examples.size());
}

}  // namespace lnx::data
