#include "posttrain/grpo.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "data/tasks.h"
#include "data/tokenizer.h"
#include "generate/generate.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "posttrain/reward_program.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "train/clip.h"
#include "train/policy.h"
#include "train/rl_losses.h"
#include "train/train_config.h"

namespace lnx::posttrain {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

GrpoConfig grpo_config(const std::vector<std::string>& overrides) {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& o : overrides) train::apply_override(root, "grpo." + o);
  GrpoConfig c;
  if (root["grpo"]) core::read_config(root["grpo"], c, "grpo");
  return c;
}

namespace {

void validate(const GrpoConfig& c) {
  LNX_CHECK(!c.init_from.empty(), ValueError, "[grpo] init_from is required (the model to train)");
  LNX_CHECK(c.steps >= 1 && c.prompts_per_step >= 1 && c.group_size >= 2 && c.max_new_tokens >= 1 && c.passes >= 1,
            ValueError,
            "[grpo] steps, prompts_per_step, max_new_tokens and passes must be >= 1 and group_size >= 2 (got {}, "
            "{}, {}, {}, {})",
            c.steps, c.prompts_per_step, c.max_new_tokens, c.passes, c.group_size);
  LNX_CHECK(c.beta >= 0 && c.lr > 0 && c.temperature > 0, ValueError, "[grpo] beta >= 0, lr > 0, temperature > 0");
  train::rl::parse_aggregation(c.aggregation);
}

struct Rollouts {
  std::vector<data::TaskExample> examples;        // [P]
  std::vector<std::vector<int32_t>> prompt_ids;   // [P·G], each prompt repeated G times
  std::vector<std::vector<int32_t>> completions;  // [P·G]
  std::vector<double> rewards;                    // [P·G]
  double accuracy = 0, tokens = 0, seconds = 0;
};

Rollouts roll_out(const models::LMModel& model, const data::Tokenizer& tok, const data::VerifiableTask& task,
                  const GrpoConfig& c, int64_t step) {
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

// Greedy accuracy on held-out prompts (indices far from the training ones).
double held_out_accuracy(const models::LMModel& model, const data::Tokenizer& tok, const data::VerifiableTask& task,
                         const GrpoConfig& c) {
  NoGradGuard no_grad;
  std::vector<data::TaskExample> ex;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t i = 0; i < c.eval_prompts; ++i) {
    ex.push_back(task.example(static_cast<uint64_t>(c.seed) + 0x5eed, i));
    prompts.push_back(tok.encode(ex.back().prompt));
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

struct StepStats {
  double loss = 0, kl = 0, clip_fraction = 0;
};

StepStats update(models::LMModel& model, const models::LMModel* reference, train::Optimizer& opt,
                 const TensorDict& params, const Rollouts& r, const GrpoConfig& c) {
  const Tensor rewards = from_vector(r.rewards, {static_cast<int64_t>(r.rewards.size())});
  const Tensor A = to_dtype(train::rl::group_advantages(rewards, c.group_size, c.scale_rewards), model.dtype());
  const auto how = train::rl::parse_aggregation(c.aggregation);
  Tensor old_logp, ref_logp;
  {
    NoGradGuard no_grad;
    old_logp = train::completion_logprobs(model, r.prompt_ids, r.completions).logp;
    if (reference) ref_logp = train::completion_logprobs(*reference, r.prompt_ids, r.completions).logp;
  }
  StepStats s;
  for (int64_t pass = 0; pass < c.passes; ++pass) {
    const train::CompletionLogprobs cur = train::completion_logprobs(model, r.prompt_ids, r.completions);
    Tensor per_token = train::rl::clipped_surrogate(cur.logp, old_logp, A, c.eps_low, c.eps_high);
    if (reference) {
      const Tensor kl = train::rl::kl_k3(cur.logp, ref_logp);
      per_token = add(per_token, mul(kl, c.beta));
      s.kl = train::rl::masked_mean(kl, cur.mask).item();
    }
    const Tensor loss = train::rl::aggregate(per_token, cur.mask, how, c.max_new_tokens);
    s.loss = loss.item();
    s.clip_fraction = train::rl::clip_fraction(cur.logp, old_logp, A, cur.mask, c.eps_low, c.eps_high);
    loss.backward();
    train::clip_grad_norm(params, c.clip > 0 ? c.clip : INFINITY);
    opt.step(1.0);
    for (const auto& [name, p] : params) p.zero_grad();
  }
  return s;
}

void save(const std::string& dir, const models::LMModel& model, const train::Optimizer& opt, int64_t step,
          const GrpoConfig& c) {
  models::save_model(model, dir, {{"step", std::to_string(step)}}, [&](const std::string& tmp) {
    save_safetensors(tmp + "/optimizer.safetensors", opt.state());
    io::write_file_atomic("grpo", tmp + "/grpo_state.json", nlohmann::json{{"step", step}}.dump() + "\n");
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"})
      if (fs::is_regular_file(fs::path(c.init_from) / f)) fs::copy_file(fs::path(c.init_from) / f, fs::path(tmp) / f);
  });
}

}  // namespace

GrpoResult grpo(const GrpoConfig& c, const GrpoHooks& hooks) {
  validate(c);
  const auto task = data::make_task(c.task, {c.digits, c.count});
  const std::string tok_path = c.init_from + "/tokenizer.json";
  LNX_CHECK(fs::exists(tok_path), ValueError, "[grpo] '{}' has no tokenizer.json", c.init_from);
  const auto tok = data::load_tokenizer(tok_path);
  fs::create_directories(c.out_dir);
  const std::string last = c.out_dir + "/last", metrics_path = c.out_dir + "/metrics.jsonl";
  const bool resuming = fs::exists(last + "/grpo_state.json");
  auto model = models::load_model(resuming ? last : c.init_from);
  std::unique_ptr<models::LMModel> reference = c.beta > 0 ? models::load_model(c.init_from) : nullptr;
  train::OptimizerConfig oc;
  oc.lr = c.lr;
  oc.weight_decay = 0.0;
  const TensorDict params = model->parameters();
  auto opt = train::make_optimizer(oc, params);
  GrpoResult result;
  int64_t start = 0;
  if (resuming) {
    opt->load_state(load_safetensors(last + "/optimizer.safetensors").tensors);
    std::ifstream f(last + "/grpo_state.json");
    start = nlohmann::json::parse(f)["step"].get<int64_t>();
    result.resumed_from = start;
    // Lines of steps after the checkpoint (a kill between a line and its checkpoint) go.
    std::ifstream in(metrics_path);
    std::string kept;
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && nlohmann::json::parse(line)["step"].get<int64_t>() <= start) kept += line + "\n";
    io::write_file_atomic("grpo", metrics_path, kept);
  } else {
    io::write_file_atomic("grpo", metrics_path, "");
  }
  result.accuracy_before = held_out_accuracy(*model, *tok, *task, c);
  std::ofstream metrics(metrics_path, std::ios::app);
  for (int64_t step = start; step < c.steps; ++step) {
    const auto t0 = Clock::now();
    const Rollouts r = roll_out(*model, *tok, *task, c, step);
    const StepStats s = update(*model, reference.get(), *opt, params, r, c);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    double mean = 0, var = 0;
    for (double x : r.rewards) mean += x / static_cast<double>(r.rewards.size());
    for (double x : r.rewards) var += (x - mean) * (x - mean) / static_cast<double>(r.rewards.size());
    nlohmann::json line{{"step", step + 1},
                        {"loss", s.loss},
                        {"reward_mean", mean},
                        {"reward_std", std::sqrt(var)},
                        {"accuracy", r.accuracy},
                        {"kl", s.kl},
                        {"clip_fraction", s.clip_fraction},
                        {"completion_length", r.tokens / static_cast<double>(r.completions.size())},
                        {"rollout_tokens_per_s", r.tokens / std::max(r.seconds, 1e-9)},
                        {"generation_share", r.seconds / std::max(seconds, 1e-9)}};
    const bool stop = hooks.after_step && !hooks.after_step(step + 1);
    if ((c.eval_every > 0 && (step + 1) % c.eval_every == 0) || step + 1 == c.steps)
      line["eval_accuracy"] = held_out_accuracy(*model, *tok, *task, c);
    metrics << line.dump() << "\n" << std::flush;
    if ((c.save_every > 0 && (step + 1) % c.save_every == 0) || step + 1 == c.steps || stop)
      save(last, *model, *opt, step + 1, c);
    result.steps = step + 1;
    if (stop) break;
  }
  result.accuracy_after = held_out_accuracy(*model, *tok, *task, c);
  return result;
}

}  // namespace lnx::posttrain
