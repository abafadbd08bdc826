// `linearnexus grpo`: GRPO on a verifiable task from a checkpoint or Hugging Face directory.
#include <fmt/format.h>

#include "cli/commands.h"
#include "posttrain/grpo.h"
#include "tensor/error.h"

namespace lnx::cli {

namespace {

struct GrpoOptions {
  std::string init_from, out;
  int64_t steps = 0;
  std::vector<std::string> overrides;  // key=value
};

int run_grpo(const GrpoOptions& o) {
  std::vector<std::string> overrides;
  if (!o.init_from.empty()) overrides.push_back("init_from=" + o.init_from);
  if (!o.out.empty()) overrides.push_back("out_dir=" + o.out);
  if (o.steps > 0) overrides.push_back("steps=" + std::to_string(o.steps));
  overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
  const posttrain::GrpoConfig c = posttrain::grpo_config(overrides);
  fmt::print("grpo: {} on task {} ({} prompts × {} samples a step, {} steps); metrics in {}/metrics.jsonl\n",
             c.init_from, c.task, c.prompts_per_step, c.group_size, c.steps, c.out_dir);
  posttrain::GrpoHooks hooks;
  hooks.after_step = [](int64_t step) {
    fmt::print("\rstep {}", step);
    std::fflush(stdout);
    return true;
  };
  const posttrain::GrpoResult r = posttrain::grpo(c, hooks);
  fmt::print("\n{} steps{}; held-out accuracy (greedy) {:.1f}% before, {:.1f}% after; checkpoint {}/last\n", r.steps,
             r.resumed_from >= 0 ? fmt::format(" (resumed at {})", r.resumed_from) : "", 100 * r.accuracy_before,
             100 * r.accuracy_after, c.out_dir);
  return 0;
}

}  // namespace

void add_posttrain_commands(CLI::App& app, Action& action) {
  auto o = std::make_shared<GrpoOptions>();
  auto* cmd = app.add_subcommand(
      "grpo", "Post-train a model with GRPO on a verifiable task (addition, sort, recall); key=value sets any option");
  cmd->add_option("--init-from", o->init_from, "checkpoint or Hugging Face model directory to train");
  cmd->add_option("--out", o->out, "run directory (last/ checkpoint, metrics.jsonl)");
  cmd->add_option("--steps", o->steps, "steps");
  cmd->add_option("overrides", o->overrides,
                  "key=value: task, group_size, prompts_per_step, beta, eps_low, eps_high, passes, aggregation, lr, …");
  cmd->callback([o, &action] { action = [o] { return run_grpo(*o); }; });
}

}  // namespace lnx::cli
