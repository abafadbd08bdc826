// `linearnexus grpo` and `linearnexus ppo`: policy-gradient post-training on a verifiable task
// from a checkpoint or Hugging Face directory; `linearnexus task`: a task's examples as SFT data.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/tasks.h"
#include "dist/communicator.h"
#include "io/atomic_file.h"
#include "posttrain/grpo.h"
#include "posttrain/ppo.h"
#include "tensor/error.h"

namespace lnx::cli {

namespace {

struct TrainerOptions {
  std::string config, init_from, out;
  int64_t steps = 0;
  std::vector<std::string> overrides;  // key=value
};

// Reads the options of trainer `name` (GrpoConfig, PpoConfig), runs it with a step counter and
// prints the held-out accuracy before and after.
template <class Config, class Result>
int run_trainer(const char* name, const TrainerOptions& o,
                Config (*read)(const std::vector<std::string>&, const std::string&),
                Result (*train)(const Config&, const posttrain::RunHooks&)) {
  std::vector<std::string> overrides;
  if (!o.init_from.empty()) overrides.push_back("init_from=" + o.init_from);
  if (!o.out.empty()) overrides.push_back("out_dir=" + o.out);
  if (o.steps > 0) overrides.push_back("steps=" + std::to_string(o.steps));
  overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
  const Config c = read(overrides, o.config);
  const bool root = dist::Communicator::world().root();  // one report for a run of several ranks
  if (root)
    fmt::print("{}: {} on task {} ({} prompts × {} samples a step, {} steps); metrics in {}/metrics.jsonl\n", name,
               c.init_from, c.task, c.prompts_per_step, c.group_size, c.steps, c.out_dir);
  std::fflush(stdout);
  posttrain::RunHooks hooks;
  const int64_t every = std::max<int64_t>(1, c.steps / 20);
  const auto t0 = std::chrono::steady_clock::now();
  hooks.after_step = [&](int64_t step, const nlohmann::json& m) {
    if (!root || (step % every != 0 && step != c.steps && !m.contains("eval_accuracy"))) return true;
    fmt::print("step {}/{} reward {:.3f} sample accuracy {:.1f}%{} generation {:.0f}% of the step, {:.0f} s\n", step,
               c.steps, m["reward_mean"].get<double>(), 100 * m["accuracy"].get<double>(),
               m.contains("eval_accuracy")
                   ? fmt::format(", held-out accuracy {:.1f}%", 100 * m["eval_accuracy"].get<double>())
                   : "",
               100 * m["generation_share"].get<double>(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::fflush(stdout);
    return true;
  };
  const Result r = train(c, hooks);
  if (root)
    fmt::print("{} steps{}; held-out accuracy (greedy) {:.1f}% before, {:.1f}% after; checkpoint {}/last\n", r.steps,
               r.resumed_from >= 0 ? fmt::format(" (resumed at {})", r.resumed_from) : "", 100 * r.accuracy_before,
               100 * r.accuracy_after, c.out_dir);
  return 0;
}

// Every option of Config with its description and default, for --help.
template <class Config> std::string options_help() {
  Config c;
  std::string out = "Options (key=value, or keys of a --config YAML file):\n";
  c.visit([&](const char* key, const auto& value, const char* what) {
    using T = std::decay_t<decltype(value)>;
    std::string shown;
    if constexpr (std::is_same_v<T, std::string>)
      shown = value.empty() ? "\"\"" : value;
    else if constexpr (std::is_same_v<T, bool>)
      shown = value ? "true" : "false";
    else
      shown = fmt::format("{}", value);
    out += fmt::format("  {:<16} {} [{}]\n", key, what, shown);
  });
  return out;
}

void add_trainer(CLI::App& app, Action& action, const char* name, const std::string& description,
                 const std::string& keys, const std::string& footer, std::function<int(const TrainerOptions&)> run) {
  auto o = std::make_shared<TrainerOptions>();
  auto* cmd = app.add_subcommand(name, description);
  cmd->add_option("--config", o->config, "YAML file of options (top level or under the trainer's name)");
  cmd->add_option("--init-from", o->init_from, "checkpoint or Hugging Face model directory to train");
  cmd->add_option("--out", o->out, "run directory (last/ checkpoint, metrics.jsonl)")->check(kNonEmpty);
  cmd->add_option("--steps", o->steps, "steps")->check(CLI::PositiveNumber);
  cmd->add_option("overrides", o->overrides, "key=value: " + keys);
  cmd->footer(footer);
  cmd->callback([o, &action, run] { action = [o, run] { return run(*o); }; });
}

struct TaskOptions {
  std::string task = "addition", out, split = "train";
  int64_t examples = 1000, digits = 2, count = 4, seed = 0;
};

// Examples of the task's split as SFT data: {"prompt", "completion"} with the answer and a newline.
int run_task(const TaskOptions& o) {
  LNX_CHECK(o.split == "train" || o.split == "held_out", ValueError,
            "[task] --split must be train or held_out, got '{}'", o.split);
  LNX_CHECK(o.examples >= 1, ValueError, "[task] --examples must be >= 1, got {}", o.examples);
  const auto task = data::make_task(o.task, {o.digits, o.count});
  const data::Split split = o.split == "train" ? data::Split::train : data::Split::held_out;
  std::string text;
  for (int64_t i = 0; i < o.examples; ++i) {
    const data::TaskExample ex = task->example(static_cast<uint64_t>(o.seed), i, split);
    text += nlohmann::json{{"prompt", ex.prompt}, {"completion", ex.answer + "\n"}}.dump() + "\n";
  }
  if (o.out.empty()) {
    fmt::print("{}", text);
  } else {
    const auto parent = std::filesystem::path(o.out).parent_path();
    if (!parent.empty()) io::create_directories("task", parent.string());
    io::write_file_atomic("task", o.out, text);
    fmt::print("{} {} examples ({} split) in {}\n", o.examples, o.task, o.split, o.out);
  }
  return 0;
}

}  // namespace

void add_posttrain_commands(CLI::App& app, Action& action) {
  add_trainer(app, action, "grpo",
              "Post-train a model with GRPO on a verifiable task (addition, sort, recall); key=value sets any option",
              "task, group_size, prompts_per_step, beta, eps_low, eps_high, passes, aggregation, lr, …",
              options_help<posttrain::GrpoConfig>(), [](const TrainerOptions& o) {
                return run_trainer("grpo", o, &posttrain::grpo_config, &posttrain::grpo);
              });
  add_trainer(app, action, "ppo",
              "Post-train a model with PPO (value head on the shared trunk, GAE, KL penalty) on a verifiable task",
              "task, kl_coef, kl_control, gamma, lam, cliprange, cliprange_value, vf_coef, passes, lr, …",
              options_help<posttrain::PpoConfig>(),
              [](const TrainerOptions& o) { return run_trainer("ppo", o, &posttrain::ppo_config, &posttrain::ppo); });
  auto t = std::make_shared<TaskOptions>();
  auto* cmd = app.add_subcommand("task", "Write a verifiable task's examples as SFT data (JSON Lines)");
  cmd->add_option("task", t->task, "addition, sort or recall");
  cmd->add_option("--examples", t->examples, "how many")->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  cmd->add_option("--out", t->out, "output file (default: standard output)");
  cmd->add_option("--split", t->split, "train or held_out (the prompts GRPO/PPO measure accuracy on)");
  cmd->add_option("--digits", t->digits, "digits per number");
  cmd->add_option("--count", t->count, "numbers to sort / key-value pairs");
  cmd->add_option("--seed", t->seed, "seed");
  cmd->callback([t, &action] { action = [t] { return run_task(*t); }; });
}

}  // namespace lnx::cli
