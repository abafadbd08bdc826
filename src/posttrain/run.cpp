#include "posttrain/run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "dist/communicator.h"
#include "generate/generate.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "posttrain/reward_program.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "train/clip.h"

namespace lnx::posttrain {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void validate_run_config(const RunConfig& c, const char* trainer, int64_t min_group_size) {
  LNX_CHECK(!c.init_from.empty(), ValueError, "[{}] init_from is required (the model to train)", trainer);
  LNX_CHECK(!c.out_dir.empty(), ValueError, "[{}] out_dir must not be empty", trainer);
  LNX_CHECK(c.steps >= 1 && c.prompts_per_step >= 1 && c.max_new_tokens >= 1 && c.passes >= 1, ValueError,
            "[{}] steps, prompts_per_step, max_new_tokens and passes must be >= 1 (got {}, {}, {}, {})", trainer,
            c.steps, c.prompts_per_step, c.max_new_tokens, c.passes);
  LNX_CHECK(c.group_size >= min_group_size, ValueError, "[{}] group_size >= {} is needed, got {}", trainer,
            min_group_size, c.group_size);
  // Every rollout of a step is decoded as one batch: bound the batch (and its states) it makes.
  constexpr int64_t kMaxRollouts = 1 << 16;
  LNX_CHECK(c.group_size <= kMaxRollouts && c.prompts_per_step <= kMaxRollouts / c.group_size &&
                c.max_new_tokens <= 1 << 16 && c.eval_prompts <= 1 << 20,
            ValueError,
            "[{}] prompts_per_step · group_size must be at most {}, max_new_tokens at most 65536 and eval_prompts at "
            "most 2^20 (got {} · {}, {}, {})",
            trainer, kMaxRollouts, c.prompts_per_step, c.group_size, c.max_new_tokens, c.eval_prompts);
  LNX_CHECK(c.lr > 0 && c.temperature > 0 && c.eval_prompts >= 1, ValueError,
            "[{}] lr > 0, temperature > 0 and eval_prompts >= 1 are needed (got {}, {}, {})", trainer, c.lr,
            c.temperature, c.eval_prompts);
}

double Rollouts::reward_mean() const {
  double mean = 0;
  for (double x : rewards) mean += x / static_cast<double>(rewards.size());
  return mean;
}

double Rollouts::reward_std() const {
  const double mean = reward_mean();
  double var = 0;
  for (double x : rewards) var += (x - mean) * (x - mean) / static_cast<double>(rewards.size());
  return std::sqrt(var);
}

nlohmann::json Rollouts::metrics(double step_seconds) const {
  return {{"reward_mean", reward_mean()},
          {"reward_std", reward_std()},
          {"accuracy", accuracy},
          {"completion_length", tokens / static_cast<double>(completions.size())},
          {"rollout_tokens_per_s", tokens / std::max(seconds, 1e-9)},
          {"generation_share", seconds / std::max(step_seconds, 1e-9)}};
}

Rollouts roll_out(const models::LMModel& model, const data::Tokenizer& tok, const data::VerifiableTask& task,
                  const RunConfig& c, int64_t step) {
  NoGradGuard no_grad;
  Rollouts r;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t i = 0; i < c.prompts_per_step; ++i) {
    r.examples.push_back(task.example(static_cast<uint64_t>(c.seed), step * c.prompts_per_step + i));
    prompts.push_back(tok.encode(r.examples.back().prompt));
  }
  generate::SamplingOptions o;
  o.temperature = c.temperature;
  o.max_new_tokens = c.max_new_tokens;
  o.seed = static_cast<uint64_t>(c.seed) * 1000003 + static_cast<uint64_t>(step) * 7919;
  o.stop_strings = {"\n"};
  o.tokenizer = &tok;
  const auto t0 = Clock::now();
  const auto groups = generate::generate_groups(model, prompts, c.group_size, o, true);
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<std::pair<std::string, std::string>> texts;
  for (size_t p = 0; p < groups.size(); ++p)
    for (const auto& completion : groups[p]) {
      r.prompt_ids.push_back(prompts[p]);
      r.completions.push_back(completion);
      const std::string text = tok.decode(completion);
      texts.emplace_back(r.examples[p].prompt, text);
      r.rewards.push_back(task.reward(r.examples[p], text, c.format_bonus));
      r.accuracy += task.reward(r.examples[p], text) >= 1.0 ? 1.0 : 0.0;
      r.tokens += static_cast<double>(completion.size());
    }
  if (!c.reward_program.empty()) r.rewards = run_reward_program(c.reward_program, texts, c.reward_timeout);
  r.accuracy /= static_cast<double>(r.rewards.size());
  return r;
}

double held_out_accuracy(const models::LMModel& model, const data::Tokenizer& tok, const data::VerifiableTask& task,
                         const RunConfig& c) {
  NoGradGuard no_grad;
  std::vector<data::TaskExample> ex;
  std::vector<std::vector<int32_t>> prompts;
  std::set<std::string> seen;
  for (int64_t i = 0; static_cast<int64_t>(ex.size()) < c.eval_prompts && i < 20 * c.eval_prompts; ++i) {
    data::TaskExample e = task.example(static_cast<uint64_t>(c.seed), i, data::Split::held_out);
    if (!seen.insert(e.prompt).second) continue;
    prompts.push_back(tok.encode(e.prompt));
    ex.push_back(std::move(e));
  }
  generate::SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = c.max_new_tokens;
  o.stop_strings = {"\n"};
  o.tokenizer = &tok;
  const auto out = generate::generate_batch(model, prompts, o);
  std::vector<std::string> texts;
  for (const auto& ids : out) texts.push_back(tok.decode(ids));
  return data::task_accuracy(task, ex, texts);
}

PolicyRun::PolicyRun(const RunConfig& c, const char* trainer) : config_(c), trainer_(trainer) {
  // Each rank would run the whole job alone, all of them on one out_dir: refused until the
  // rollouts and the learning step are shared out across ranks.
  const int ranks = dist::Communicator::world().size();
  LNX_CHECK(ranks == 1, ValueError,
            "[{}] started as one of {} ranks: post-training runs as one process for now (data-parallel GRPO and PPO "
            "are not implemented yet); start it without mpirun",
            trainer, ranks);
  task = data::make_task(c.task, {c.digits, c.count});
  const std::string tok_path = c.init_from + "/tokenizer.json";
  LNX_CHECK(fs::exists(tok_path), ValueError, "[{}] '{}' has no tokenizer.json", trainer, c.init_from);
  tokenizer = data::load_tokenizer(tok_path);
  io::create_directories(trainer, c.out_dir);
  lock_.emplace(trainer, c.out_dir);
  const std::string state_path = last_file(trainer_ + "_state.json");
  const std::string metrics_path = c.out_dir + "/metrics.jsonl";
  const bool resume = fs::exists(state_path);
  model = models::load_model(resume ? last_dir() : c.init_from);
  std::string kept;
  if (resume) {
    std::ifstream f(state_path);
    state = nlohmann::json::parse(f);
    start = state.at("step").get<int64_t>();
    // Lines of steps after the checkpoint go, and so does a line a kill cut short.
    std::ifstream in(metrics_path);
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= start)
        kept += line + "\n";
    }
  } else {
    LNX_CHECK(!fs::exists(last_dir()), ValueError,
              "[{}] '{}' holds a checkpoint of another trainer (no {}_state.json); choose another out_dir", trainer,
              last_dir(), trainer_);
    state = nlohmann::json::object();
  }
  io::write_file_atomic(trainer, metrics_path, kept);
  metrics_.emplace(trainer, metrics_path);
}

std::unique_ptr<train::Optimizer> PolicyRun::make_optimizer(const TensorDict& params) const {
  train::OptimizerConfig oc;
  oc.lr = config_.lr;
  oc.weight_decay = 0.0;
  auto opt = train::make_optimizer(oc, params);
  if (resuming()) opt->load_state(load_safetensors(last_file("optimizer.safetensors")).tensors);
  return opt;
}

void optimise(const Tensor& loss, const TensorDict& params, train::Optimizer& opt, double clip) {
  loss.backward();
  train::clip_grad_norm(params, clip > 0 ? clip : INFINITY);
  opt.step(1.0);
  for (const auto& [name, p] : params) p.zero_grad();
}

double PolicyRun::accuracy_before() {
  if (accuracy_before_ < 0)
    accuracy_before_ = state.contains("accuracy_before") ? state["accuracy_before"].get<double>()
                                                         : held_out_accuracy(*model, *tokenizer, *task, config_);
  return accuracy_before_;
}

void PolicyRun::save(const train::Optimizer& opt, int64_t step, const nlohmann::json& s,
                     const std::vector<std::pair<std::string, TensorDict>>& extra) const {
  nlohmann::json full = s;
  full["step"] = step;
  if (accuracy_before_ >= 0) full["accuracy_before"] = accuracy_before_;
  models::save_model(*model, last_dir(), {{"step", std::to_string(step)}}, [&](const std::string& tmp) {
    save_safetensors(tmp + "/optimizer.safetensors", opt.state());
    for (const auto& [name, tensors] : extra) save_safetensors(tmp + "/" + name + ".safetensors", tensors);
    io::write_file_atomic(trainer_, tmp + "/" + trainer_ + "_state.json", full.dump() + "\n");
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"})
      if (fs::is_regular_file(fs::path(config_.init_from) / f))
        fs::copy_file(fs::path(config_.init_from) / f, fs::path(tmp) / f);
  });
}

bool PolicyRun::end_step(int64_t step, nlohmann::json line, const RunHooks& hooks, const std::function<void()>& save) {
  const bool last = step == config_.steps;
  if ((config_.eval_every > 0 && step % config_.eval_every == 0) || last)
    line["eval_accuracy"] = held_out_accuracy(*model, *tokenizer, *task, config_);
  const bool stop = hooks.after_step && !hooks.after_step(step, line);
  metrics_->append(line.dump());
  if ((config_.save_every > 0 && step % config_.save_every == 0) || last || stop) save();
  return stop;
}

std::unique_ptr<models::LMModel> load_reference(const RunConfig& c, double coefficient) {
  return coefficient > 0 ? models::load_model(c.init_from) : nullptr;
}

}  // namespace lnx::posttrain
