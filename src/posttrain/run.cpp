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
#include "io/read_file.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "posttrain/reward_program.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "train/clip.h"
#include "train/data_parallel.h"

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
  LNX_CHECK(c.collective_timeout > 0, ValueError, "[{}] collective_timeout must be positive, got {}", trainer,
            c.collective_timeout);
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

nlohmann::json Rollouts::metrics(double step_seconds, dist::Communicator& comm) const {
  if (comm.size() == 1)
    return {{"reward_mean", reward_mean()},
            {"reward_std", reward_std()},
            {"accuracy", accuracy},
            {"completion_length", tokens / static_cast<double>(completions.size())},
            {"rollout_tokens_per_s", tokens / std::max(seconds, 1e-9)},
            {"generation_share", seconds / std::max(step_seconds, 1e-9)}};
  // Over every rank's rollouts. Times are rank 0's (the ranks generate side by side), so the
  // throughput is all ranks' tokens over rank 0's generation time.
  const double n_local = static_cast<double>(rewards.size());
  double sums[4] = {0, n_local, std::round(accuracy * n_local), tokens};  // Σ reward, rollouts, right answers, tokens
  for (double x : rewards) sums[0] += x;
  comm.allreduce_sum(sums, 4, "the all-reduce of the rollout metrics");
  const double n = std::max(sums[1], 1.0), mean = sums[0] / n;
  double var = 0;
  for (double x : rewards) var += (x - mean) * (x - mean);
  var = comm.allreduce_sum(var, "the all-reduce of the reward variance") / n;
  return {{"reward_mean", mean},
          {"reward_std", std::sqrt(var)},
          {"accuracy", sums[2] / n},
          {"completion_length", sums[3] / n},
          {"rollout_tokens_per_s", sums[3] / std::max(seconds, 1e-9)},
          {"generation_share", seconds / std::max(step_seconds, 1e-9)}};
}

namespace {

// This rank's contiguous share [first, last) of n items (the first n % ranks ranks get one more).
std::pair<int64_t, int64_t> share_of(int64_t n, const dist::Communicator& comm) {
  const int64_t r = comm.rank(), k = comm.size();
  const int64_t first = n / k * r + std::min(r, n % k);
  return {first, first + n / k + (r < n % k ? 1 : 0)};
}

}  // namespace

Rollouts roll_out(const models::LMModel& model, const data::Tokenizer& tok, const data::VerifiableTask& task,
                  const RunConfig& c, int64_t step, dist::Communicator& comm) {
  NoGradGuard no_grad;
  Rollouts r;
  std::vector<std::vector<int32_t>> prompts;
  const std::pair<int64_t, int64_t> mine = share_of(c.prompts_per_step, comm);
  if (mine.first == mine.second) return r;  // more ranks than prompts
  for (int64_t i = mine.first; i < mine.second; ++i) {
    r.examples.push_back(task.example(static_cast<uint64_t>(c.seed), step * c.prompts_per_step + i));
    prompts.push_back(tok.encode(r.examples.back().prompt));
  }
  generate::SamplingOptions o;
  o.temperature = c.temperature;
  o.max_new_tokens = c.max_new_tokens;
  // Sample j of the step's prompt p draws from seed + p · G + j, whichever rank decodes it.
  o.seed = static_cast<uint64_t>(c.seed) * 1000003 + static_cast<uint64_t>(step) * 7919 +
           static_cast<uint64_t>(mine.first * c.group_size);
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
                         const RunConfig& c, dist::Communicator& comm) {
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
  if (comm.size() == 1) {
    const auto out = generate::generate_batch(model, prompts, o);
    std::vector<std::string> texts;
    for (const auto& ids : out) texts.push_back(tok.decode(ids));
    return data::task_accuracy(task, ex, texts);
  }
  // Each rank decodes its share and the right answers are counted over all.
  const std::pair<int64_t, int64_t> mine = share_of(static_cast<int64_t>(prompts.size()), comm);
  double right = 0;
  if (mine.first < mine.second) {
    const std::vector<std::vector<int32_t>> part(prompts.begin() + mine.first, prompts.begin() + mine.second);
    const std::vector<data::TaskExample> part_ex(ex.begin() + mine.first, ex.begin() + mine.second);
    std::vector<std::string> texts;
    for (const auto& ids : generate::generate_batch(model, part, o)) texts.push_back(tok.decode(ids));
    right = std::round(data::task_accuracy(task, part_ex, texts) * static_cast<double>(part.size()));
  }
  right = comm.allreduce_sum(right, "the all-reduce of the held-out accuracy");
  return right / static_cast<double>(prompts.size());
}

PolicyRun::PolicyRun(const RunConfig& c, const char* trainer) : config_(c), trainer_(trainer) {
  task = data::make_task(c.task, {c.digits, c.count});
  const std::string tok_path = c.init_from + "/tokenizer.json";
  LNX_CHECK(fs::exists(tok_path), ValueError, "[{}] '{}' has no tokenizer.json", trainer, c.init_from);
  tokenizer = data::load_tokenizer(tok_path);
  comm.set_timeout(c.collective_timeout);
  const std::string state_path = last_file(trainer_ + "_state.json");
  const std::string metrics_path = c.out_dir + "/metrics.jsonl";
  // Rank 0 reads last/ and tells the others (they may not see out_dir; only rank 0 touches it).
  std::string state_text;
  if (comm.root()) {
    io::create_directories(trainer, c.out_dir);
    lock_.emplace(trainer, c.out_dir);
    if (fs::exists(state_path)) state_text = io::read_file(trainer, state_path, uint64_t{1} << 20);
  }
  comm.broadcast(state_text, 0, "the broadcast of the trainer state");
  const bool resume = !state_text.empty();
  model = models::load_model(resume && comm.root() ? last_dir() : c.init_from);
  train::broadcast_parameters(comm, model->parameters());
  std::string kept;
  if (resume) {
    state = nlohmann::json::parse(state_text);
    start = state.at("step").get<int64_t>();
    // Lines of steps after the checkpoint go, and so does a line a kill cut short.
    std::ifstream in;
    if (comm.root()) in.open(metrics_path);
    for (std::string line; comm.root() && std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= start)
        kept += line + "\n";
    }
  } else {
    LNX_CHECK(!comm.root() || !fs::exists(last_dir()), ValueError,
              "[{}] '{}' holds a checkpoint of another trainer (no {}_state.json); choose another out_dir", trainer,
              last_dir(), trainer_);
    state = nlohmann::json::object();
  }
  if (comm.root()) {
    io::write_file_atomic(trainer, metrics_path, kept);
    metrics_.emplace(trainer, metrics_path);
  }
}

std::unique_ptr<train::Optimizer> PolicyRun::make_optimizer(const TensorDict& params) {
  train::OptimizerConfig oc;
  oc.lr = config_.lr;
  oc.weight_decay = 0.0;
  if (comm.size() > 1) reducer = std::make_unique<dist::GradientReducer>(comm, params);
  auto opt = train::make_optimizer(oc, params);
  if (resuming() && comm.size() == 1) {
    opt->load_state(load_safetensors(last_file("optimizer.safetensors")).tensors);  // mapped, not copied
  } else if (resuming()) {
    const std::string bytes = train::broadcast_file(comm, last_file("optimizer.safetensors"), trainer_.c_str());
    opt->load_state(parse_safetensors(bytes.data(), bytes.size()).tensors);
  }
  return opt;
}

void optimise(const Tensor& loss, const TensorDict& params, train::Optimizer& opt, double clip,
              dist::GradientReducer* reducer) {
  if (reducer) {
    if (loss.defined()) backward({loss}, {}, false, reducer->hook());  // buckets start as gradients are final
    reducer->finish();
  } else {
    loss.backward();
  }
  train::clip_grad_norm(params, clip > 0 ? clip : INFINITY);
  opt.step(1.0);
  for (const auto& [name, p] : params) p.zero_grad();
}

double PolicyRun::accuracy_before() {
  if (accuracy_before_ < 0)
    accuracy_before_ = state.contains("accuracy_before") ? state["accuracy_before"].get<double>()
                                                         : held_out_accuracy(*model, *tokenizer, *task, config_, comm);
  return accuracy_before_;
}

void PolicyRun::save(const train::Optimizer& opt, int64_t step, const nlohmann::json& s,
                     const std::vector<std::pair<std::string, TensorDict>>& extra) const {
  if (!comm.root()) return;  // every rank holds the same weights and optimizer state
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
    line["eval_accuracy"] = held_out_accuracy(*model, *tokenizer, *task, config_, comm);
  bool stop = hooks.after_step && !hooks.after_step(step, line);
  // Every rank stops together when any rank's hook asked to (a hook may be set on one rank only).
  if (comm.size() > 1) stop = comm.allreduce_sum(stop ? 1.0 : 0.0, "the all-reduce of the stop request") > 0;
  if (metrics_) metrics_->append(line.dump());
  if ((config_.save_every > 0 && step % config_.save_every == 0) || last || stop) save();
  return stop;
}

std::unique_ptr<models::LMModel> load_reference(const RunConfig& c, double coefficient) {
  return coefficient > 0 ? models::load_model(c.init_from) : nullptr;
}

}  // namespace lnx::posttrain
