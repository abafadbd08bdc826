#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "data/loader.h"
#include "data/mqar.h"
#include "dist/gradient_reducer.h"
#include "io/atomic_file.h"
#include "io/directory_lock.h"
#include "io/log_file.h"
#include "io/read_file.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "tensor/autograd.h"
#include "tensor/cpu/blas.h"
#include "tensor/cpu/gemm_bf16.h"
#include "tensor/cpu/parallel.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "train/data_parallel.h"
#include "train/run_data.h"

namespace lnx::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

void validate_loop(const LoopConfig& t) {
  auto positive = [](const char* key, int64_t v) {
    LNX_CHECK(v > 0, ValueError, "[train] train.{} must be positive, got {}", key, v);
  };
  positive("steps", t.steps);
  positive("batch_size", t.batch_size);
  positive("seq_len", t.seq_len);
  positive("grad_accum", t.grad_accum);
  positive("eval_batches", t.eval_batches);
  LNX_CHECK(t.eval_every >= 0 && t.save_every >= 0 && t.log_every >= 0, ValueError,
            "[train] eval_every, save_every and log_every must be ≥ 0");
  LNX_CHECK(t.clip >= 0, ValueError, "[train] train.clip must be ≥ 0 (0 = off), got {}", t.clip);
  LNX_CHECK(!t.out_dir.empty(), ValueError, "[train] train.out_dir is empty");
  LNX_CHECK(t.precision == "f32" || t.precision == "bf16", ValueError,
            "[train] train.precision must be f32 or bf16, got '{}'", t.precision);
}

std::string human_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t total = static_cast<int64_t>(s + 0.5);
  if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, total / 60 % 60);
  if (total >= 60) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

// Mean loss (and recall accuracy on MQAR) over the first `batches` validation batches; with
// several ranks each takes every size-th batch and the sums are reduced.
struct EvalStats {
  double loss = 0, accuracy = -1;
  int64_t tokens = 0;
};
EvalStats eval_pass(const models::LMModel& model, const RunData& data, int64_t batches,
                    dist::Communicator& comm = dist::Communicator::self()) {
  NoGradGuard no_grad;
  double sums[3] = {0, 0, 0};  // loss, recall accuracy, tokens
  for (int64_t i = comm.rank(); i < batches; i += comm.size()) {
    const data::Batch b = data.val_batch(i);
    models::ForwardOptions fwd;
    fwd.cu_seqlens = b.cu_seqlens;                                    // packed examples (SFT)
    const Tensor logits = model.forward(b.ids, nullptr, fwd).logits;  // [B, T, V]
    sums[0] += cross_entropy(reshape(logits, {-1, logits.size(2)}), reshape(b.targets, {-1})).item();
    if (data.mqar) sums[1] += data::mqar_accuracy(logits, b.targets);
    sums[2] += static_cast<double>(b.ids.numel());
  }
  comm.allreduce_sum(sums, 3, "the all-reduce of the validation results");
  EvalStats s;
  s.loss = sums[0] / static_cast<double>(batches);
  if (data.mqar) s.accuracy = sums[1] / static_cast<double>(batches);
  s.tokens = static_cast<int64_t>(sums[2]);
  return s;
}

// Labels drawn from the model's own predictions (Sophia-G's Gauss–Newton–Bartlett estimate).
// Row r's draw depends only on (seed, first_row + r), so a rank's shard draws what the same rows
// of the whole batch would.
uint64_t mix_seed(int64_t seed, int64_t step);
Tensor sample_labels(const Tensor& logits, uint64_t seed, int64_t first_row) {
  const Tensor p = softmax(to_dtype(logits.detach(), DType::f64), -1);
  const int64_t V = p.size(-1), rows = p.numel() / V;
  const std::vector<double> pv = p.to_vector<double>();
  std::vector<int64_t> labels(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    Generator gen(mix_seed(static_cast<int64_t>(seed), first_row + r));
    double u = gen.uniform();
    int64_t k = 0;
    for (; k < V - 1; ++k) {
      u -= pv[static_cast<size_t>(r * V + k)];
      if (u < 0) break;
    }
    labels[static_cast<size_t>(r)] = k;
  }
  return from_vector(labels, {rows});
}

uint64_t mix_seed(int64_t seed, int64_t step) {
  uint64_t z =
      static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct TrainerState {
  int64_t step = 0;
  double best_val_loss = std::numeric_limits<double>::infinity();
};

// optimizer_name "" (best/): no optimizer state.
void save_run_checkpoint(const std::string& dir, const models::LMModel& model, const std::string& optimizer_name,
                         const TensorDict& optimizer_state, const TrainerState& state, const RunData& data,
                         const TrainConfig& config) {
  models::save_model(model, dir, {{"step", std::to_string(state.step)}}, [&](const std::string& tmp) {
    if (!optimizer_name.empty()) save_safetensors(tmp + "/optimizer.safetensors", optimizer_state);
    nlohmann::json j;
    j["step"] = state.step;
    j["best_val_loss"] = std::isfinite(state.best_val_loss) ? nlohmann::json(state.best_val_loss) : nlohmann::json();
    j["optimizer"] = optimizer_name;
    io::write_file_atomic("checkpoint", tmp + "/trainer_state.json", j.dump(2) + "\n");
    if (data.tokenizer) data.tokenizer->save(tmp + "/tokenizer.json");
    // A fine-tuned model keeps its chat template and generation settings.
    if (!config.train.init_from.empty())
      for (const char* f :
           {"tokenizer_config.json", "chat_template.jinja", "generation_config.json", "special_tokens_map.json"})
        if (fs::is_regular_file(fs::path(config.train.init_from) / f))
          fs::copy_file(fs::path(config.train.init_from) / f, fs::path(tmp) / f, fs::copy_options::overwrite_existing);
    // A template from the config replaces the model's, so chat and generate use what SFT trained on.
    if (!data.chat_template.empty())
      io::write_file_atomic("checkpoint", tmp + "/chat_template.jinja", data.chat_template);
    io::write_file_atomic("checkpoint", tmp + "/train.yaml", core::to_yaml_string(train_config_to_yaml(config)) + "\n");
  });
}

TrainerState parse_trainer_state(const std::string& path, const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
    TrainerState s;
    s.step = j.at("step").get<int64_t>();
    if (!j.at("best_val_loss").is_null()) s.best_val_loss = j.at("best_val_loss").get<double>();
    LNX_CHECK(s.step >= 0, IOError, "[train] '{}': negative step {}", path, s.step);
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw IOError(fmt::format("[train] '{}' is not a valid trainer state: {}", path, e.what()));
  }
}

TrainerState read_trainer_state(const std::string& path) {
  return parse_trainer_state(path, io::read_file("train", path, uint64_t{1} << 20));  // a FIFO or directory: IOError
}

// Keeps the metric records of steps before `step` (a resumed run redoes the later ones).
void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (j.value("step", int64_t{0}) < step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // a line cut by a kill: dropped
    }
  }
  io::write_file_atomic("train", path, kept);
}

// Prints on rank 0 only.
class Progress {
 public:
  Progress(int64_t total, int64_t log_every, bool enabled)
      : total_(total), log_every_(log_every), tty_(isatty(fileno(stdout))), enabled_(enabled) {}
  void step(int64_t step, double loss, double tokens_per_s, double eta_s) {
    if (!enabled_) return;
    if (tty_) {
      const int width = 24;
      const int filled =
          static_cast<int>(static_cast<double>(width) * static_cast<double>(step + 1) / static_cast<double>(total_));
      fmt::print("\r[{}{}] step {}/{} loss {:.4f} | {:.1f}k tok/s | ETA {}   ", std::string(filled, '#'),
                 std::string(width - filled, '.'), step + 1, total_, loss, tokens_per_s / 1e3, human_duration(eta_s));
      std::fflush(stdout);
      dirty_ = true;
    } else if (log_every_ > 0 && ((step + 1) % log_every_ == 0 || step + 1 == total_)) {
      fmt::print("step {}/{} loss {:.4f} {:.1f}k tok/s ETA {}\n", step + 1, total_, loss, tokens_per_s / 1e3,
                 human_duration(eta_s));
      std::fflush(stdout);
    }
  }
  void line(const std::string& text) {
    if (!enabled_) return;
    if (dirty_) fmt::print("\n");
    dirty_ = false;
    fmt::print("{}\n", text);
    std::fflush(stdout);
  }

 private:
  int64_t total_, log_every_;
  bool tty_, enabled_, dirty_ = false;
};

// A resumed run keeps the tokenizer and token files of last/: data settings or a sequence length
// other than the run's would be silently ignored, so they are refused, each change named.
void check_same_data(const TrainConfig& config, const std::string& last) {
  const std::string saved_path = last + "/train.yaml";
  if (!fs::exists(saved_path)) return;
  const TrainConfig saved = load_train_config(saved_path, {});
  std::vector<std::string> changed;
  const YAML::Node was = core::write_config(saved.data), now = core::write_config(config.data);
  for (const auto& item : now) {
    const std::string key = item.first.Scalar();
    const std::string a = YAML::Dump(was[key]), b = YAML::Dump(item.second);
    if (a != b) changed.push_back(fmt::format("data.{} {} → {}", key, a, b));
  }
  if (saved.train.seq_len != config.train.seq_len)
    changed.push_back(fmt::format("train.seq_len {} → {}", saved.train.seq_len, config.train.seq_len));
  LNX_CHECK(changed.empty(), ValueError,
            "[train] {} was trained with other data settings ({}); resuming would keep its tokenizer and data. Use "
            "the run's settings to resume, or another train.out_dir to start over",
            last, fmt::join(changed, ", "));
}

// A directory in the system's temporary space, removed however the run ends; the directories
// of earlier processes with the same prefix that were killed are removed first.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const std::string& prefix) {
    const fs::path tmp = fs::temp_directory_path();
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(tmp, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && !io::process_alive(std::atol(name.c_str() + prefix.size())))
        fs::remove_all(entry, ec);
    }
    path = tmp / fmt::format("{}{}", prefix, ::getpid());
  }
  ~ScratchDir() {
    std::error_code e;
    fs::remove_all(path, e);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

TrainResult run_training(const TrainConfig& config, const TrainHooks& hooks, dist::Communicator& comm) {
  const LoopConfig& t = config.train;
  validate_loop(t);
  const MatmulPrecisionScope precision(parse_matmul_precision(t.precision));
  const bool distributed = comm.size() > 1, root = comm.root();
  LNX_CHECK(t.zero_stage == 0 || t.zero_stage == 1, ValueError, "[train] train.zero_stage must be 0 or 1, got {}",
            t.zero_stage);
  LNX_CHECK(t.bucket_mb > 0 && t.bucket_mb <= 4096, ValueError, "[train] train.bucket_mb must be in (0, 4096], got {}",
            t.bucket_mb);
  comm.set_timeout(t.collective_timeout);
  LNX_CHECK(!distributed || config.data.source == "sft" || t.batch_size >= comm.size(), ValueError,
            "[train] train.batch_size {} is smaller than the {} ranks: each rank trains on its share of the rows of "
            "every batch, so raise train.batch_size (the global batch) or use fewer ranks",
            t.batch_size, comm.size());
  // Only rank 0 writes to out_dir; the other ranks prepare their copy of the data in scratch space.
  std::unique_ptr<io::DirectoryLock> lock;
  std::unique_ptr<ScratchDir> scratch;
  if (root) {
    io::create_directories("train", t.out_dir);
    lock = std::make_unique<io::DirectoryLock>("train", t.out_dir);  // one run per directory
  } else {
    // Named by host as well: machines may share a temporary directory.
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    scratch = std::make_unique<ScratchDir>(fmt::format("lnx-rank-{}-", host));
  }
  const std::string last = t.out_dir + "/last", best = t.out_dir + "/best", metrics_path = t.out_dir + "/metrics.jsonl";
  // Whether to resume, and with which tokenizer, is rank 0's decision: the others may not see out_dir.
  std::string resume_flag = root ? (t.resume && fs::exists(last + "/trainer_state.json")
                                        ? (fs::exists(last + "/tokenizer.json") ? "resume+tokenizer" : "resume")
                                        : "fresh")
                                 : "";
  if (root && resume_flag != "fresh") check_same_data(config, last);
  comm.broadcast(resume_flag, 0, "the broadcast of the resume decision");
  const bool resuming = resume_flag != "fresh";
  std::string resume_tokenizer;
  if (resume_flag == "resume+tokenizer") {
    resume_tokenizer = last + "/tokenizer.json";
    if (distributed) {
      const std::string bytes = broadcast_file(comm, resume_tokenizer);
      if (!root) {
        io::create_directories("train", scratch->path.string());
        resume_tokenizer = (scratch->path / "tokenizer.json").string();
        io::write_file_atomic("train", resume_tokenizer, bytes);
      }
    }
  }
  // Fine-tuning starts from init_from's model and tokenizer (every rank must see init_from, as
  // data.path); a resumed run reads its own.
  const std::string init_tokenizer = t.init_from.empty() ? "" : t.init_from + "/tokenizer.json";
  LNX_CHECK(t.init_from.empty() || config.data.source == "mqar" || fs::exists(init_tokenizer), ValueError,
            "[train] train.init_from '{}' has no tokenizer.json; text data must be tokenized by the model's own "
            "tokenizer",
            t.init_from);
  const RunData data = prepare_run_data(
      config, root ? t.out_dir : scratch->path.string(), t.init_from,
      !resume_tokenizer.empty() ? resume_tokenizer
                                : (t.init_from.empty() || config.data.source == "mqar" ? "" : init_tokenizer));
  if (distributed) {
    const std::string mine = fmt::format("vocabulary {}, {} training and {} validation tokens", data.vocab_size,
                                         data.train_tokens, data.val_tokens);
    std::string theirs = mine;
    comm.broadcast(theirs, 0, "the broadcast of the data summary");
    LNX_CHECK(mine == theirs, DistributedError,
              "[train] rank {} prepared other data than rank 0 ({}, rank 0: {}): data.path and data.tokenizer must be "
              "the same files on every machine",
              comm.rank(), mine, theirs);
  }
  Progress progress(t.steps, t.log_every, root);
  progress.line(fmt::format("data: {}", data.description));

  TrainConfig run_config = config;  // with the model actually trained (init_from's), for train.yaml
  models::ModelConfig& mc = run_config.model;
  if (!t.init_from.empty()) {
    mc = models::load_directory_config(t.init_from);
    LNX_CHECK(data.vocab_size <= mc.vocab_size, ValueError,
              "[train] the data has {} token ids but the model of train.init_from '{}' has a vocabulary of {}",
              data.vocab_size, t.init_from, mc.vocab_size);
  } else if (config.model_vocab_size_set) {
    // A larger vocabulary than the tokenizer's is kept (rows never indexed, e.g. padding to a
    // multiple of 64); a smaller one cannot embed the data.
    LNX_CHECK(mc.vocab_size >= data.vocab_size, ValueError,
              "[train] model.vocab_size is {} but the {} tokenizer has {} tokens; leave model.vocab_size out to use "
              "the tokenizer's, or set it to at least {}",
              mc.vocab_size, data.tokenizer ? data.tokenizer->kind() : config.data.source, data.vocab_size,
              data.vocab_size);
  } else {
    mc.vocab_size = data.vocab_size;  // the tokenizer decides
  }
  TrainResult result;
  result.model = !t.init_from.empty() && !resuming
                     ? std::shared_ptr<models::LMModel>(models::load_model(t.init_from))
                     : std::make_shared<models::LMModel>(mc, static_cast<uint64_t>(t.seed));
  models::LMModel& model = *result.model;
  TrainerState state;
  if (resuming) {
    if (root) models::load_weights(model, last + "/model.safetensors");
    state = parse_trainer_state(last + "/trainer_state.json",
                                distributed ? broadcast_file(comm, last + "/trainer_state.json")
                                            : io::read_file("train", last + "/trainer_state.json", uint64_t{1} << 20));
    result.resumed_from = state.step;
  }
  const TensorDict params = model.parameters();  // after loading: load_weights may replace the tensors
  broadcast_parameters(comm, params);            // every rank starts from rank 0's weights

  // Gradients are summed over ranks by the reducer, during the backward of the last micro-batch.
  std::unique_ptr<dist::GradientReducer> reducer;
  if (distributed)
    reducer = std::make_unique<dist::GradientReducer>(
        comm, params, dist::ReducerOptions{static_cast<int64_t>(t.bucket_mb * 1024 * 1024), t.zero_stage == 1});
  const bool sharded = reducer && reducer->sharded();
  const TensorDict& owned = reducer ? reducer->owned() : params;
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config.optimizer, owned);
  if (resuming && !distributed) {
    optimizer->load_state(load_safetensors(last + "/optimizer.safetensors").tensors);  // mapped, not copied
  } else if (resuming) {
    const std::string bytes = broadcast_file(comm, last + "/optimizer.safetensors");
    optimizer->load_state(owned_optimizer_state(parse_safetensors(bytes.data(), bytes.size()).tensors, owned));
  }
  progress.line(fmt::format("model: {} ({} blocks [{}], d_model {}, {:.2f}M parameters); optimizer {}; {}{}", mc.name,
                            mc.n_layer, fmt::join(mc.block_pattern, ", "), mc.d_model,
                            static_cast<double>(model.num_parameters()) / 1e6, optimizer->name(),
                            resuming ? fmt::format("resuming at step {}", state.step) : "fresh start",
                            distributed ? fmt::format("; {} ranks × {} threads{}", comm.size(), num_threads(),
                                                      sharded ? ", optimizer state sharded (ZeRO-1)" : "")
                                        : ""));
  if (t.precision == "bf16")
    progress.line(gemm_bf16_native()
                      ? "precision: bf16 matrix products (AVX512_BF16), f32 parameters and optimizer"
                      : "precision: bf16 requested, but this CPU has no AVX512_BF16: products are rounded to bf16 "
                        "and run through sgemm, slower than train.precision=f32");
  std::unique_ptr<io::LogFile> metrics;
  if (root) {
    if (resuming)
      truncate_metrics(metrics_path, state.step);
    else
      io::write_file_atomic("train", metrics_path, "");
    metrics = std::make_unique<io::LogFile>("train", metrics_path);
  }

  models::ForwardOptions fwd;
  fwd.remat = t.remat;
  const int64_t tokens_per_step = t.batch_size * t.seq_len * t.grad_accum;
  const auto started = Clock::now();
  result.unigram_entropy = data.unigram_entropy;
  result.best_val_loss = state.best_val_loss;
  // Batches are pure functions of their index; a thread prepares the next ones during a step.
  // Each rank takes its shard of every global batch.
  const int64_t rank = comm.rank(), ranks = comm.size();
  const std::function<data::Batch(int64_t)> my_batch =
      distributed ? std::function<data::Batch(int64_t)>(
                        [&data, rank, ranks](int64_t i) { return data::shard_batch(data.train_batch(i), rank, ranks); })
                  : data.train_batch;
  data::Loader loader(my_batch, state.step * t.grad_accum, 4);
  ScheduleConfig schedule = config.schedule;
  if (schedule.total_steps == 0) schedule.total_steps = t.steps;  // 0: decay over the whole run
  bool stopped = false;
  for (int64_t step = state.step; step < t.steps && !stopped; ++step) {
    const double lr_scale = train::lr_scale(schedule, step);
    const double comm_before = reducer ? reducer->stats().finish_seconds + reducer->stats().gather_seconds : 0;
    if (optimizer->wants_hessian(step)) {
      const data::Batch b = my_batch(step * t.grad_accum);
      const int64_t global_rows = distributed ? data.train_batch(step * t.grad_accum).ids.numel() : b.ids.numel();
      TensorDict grads;
      if (b.ids.numel() > 0) {
        fwd.cu_seqlens = b.cu_seqlens;
        const Tensor logits = model.forward(b.ids, nullptr, fwd).logits;
        const Tensor labels = sample_labels(logits, mix_seed(t.seed, step), b.global_position);
        const Tensor l = cross_entropy(reshape(logits, {-1, logits.size(2)}), labels);
        // This shard's share of the mean over the whole batch.
        (distributed ? mul(l, static_cast<double>(labels.numel()) / static_cast<double>(global_rows)) : l).backward();
      }
      if (reducer) reducer->finish();
      for (const auto& [name, p] : owned) grads.insert(name, p.grad().defined() ? clone(p.grad()) : zeros_like(p));
      for (const auto& [name, p] : params) p.zero_grad();
      optimizer->update_hessian(grads, global_rows);
    }
    double loss = 0;
    for (int64_t micro = 0; micro < t.grad_accum; ++micro) {
      const data::Batch b = loader.next();  // index step · grad_accum + micro (this rank's shard)
      const bool last_micro = micro + 1 == t.grad_accum;
      if (!distributed) {
        fwd.cu_seqlens = b.cu_seqlens;
        Tensor l = model.loss(b.ids, b.targets, fwd);
        loss += l.item() / static_cast<double>(t.grad_accum);
        (t.grad_accum > 1 ? div(l, static_cast<double>(t.grad_accum)) : l).backward();
        continue;
      }
      // The loss of the step is the mean over micro-batches of each global batch's mean over its
      // scored targets: this shard's mean weighs scored / global_scored of it.
      const std::vector<int64_t> targets = b.targets.to_vector<int64_t>();
      const int64_t scored = std::count_if(targets.begin(), targets.end(), [](int64_t v) { return v != -100; });
      if (scored > 0) {
        fwd.cu_seqlens = b.cu_seqlens;
        Tensor l = model.loss(b.ids, b.targets, fwd);
        const double weight =
            static_cast<double>(scored) /
            (static_cast<double>(std::max<int64_t>(b.global_scored, 1)) * static_cast<double>(t.grad_accum));
        loss += l.item() * weight;
        const Tensor weighted = mul(l, weight);
        if (last_micro)
          backward({weighted}, {}, false, reducer->hook());  // buckets start as their gradients are final
        else
          weighted.backward();
      }
    }
    if (reducer) {
      reducer->finish();
      loss = comm.allreduce_sum(loss, "the all-reduce of the loss");
    }
    const double clip = t.clip > 0 ? t.clip : INFINITY;
    const double norm = sharded ? clip_grad_norm_sharded(comm, owned, clip) : clip_grad_norm(params, clip);
    if (!std::isfinite(loss) || !std::isfinite(norm))
      throw ValueError(fmt::format(
          "[train] the loss became {} (gradient norm {}) at step {}; stopped without applying it. The last checkpoint "
          "({}) is from step {}: lower optimizer.lr or set train.clip and resume from it",
          loss, norm, step, root && fs::exists(last) ? last : "none yet", state.step));
    optimizer->step(lr_scale);
    if (reducer) reducer->gather_parameters();
    for (const auto& [name, p] : params) p.zero_grad();
    state.step = step + 1;
    result.tokens += tokens_per_step;
    result.last_loss = loss;
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    const double tok_s = static_cast<double>(result.tokens) / elapsed;
    const double eta = elapsed / static_cast<double>(state.step - std::max<int64_t>(result.resumed_from, 0)) *
                       static_cast<double>(t.steps - state.step);
    if (metrics) {
      nlohmann::json record{
          {"step", step}, {"loss", loss}, {"lr_scale", lr_scale}, {"grad_norm", norm}, {"tokens_per_s", tok_s}};
      // Time rank 0 spent in communication the backward did not hide (and the parameters' all-gather).
      if (reducer) record["comm_s"] = reducer->stats().finish_seconds + reducer->stats().gather_seconds - comm_before;
      metrics->append(record.dump());
    }
    progress.step(step, loss, tok_s, eta);
    if (hooks.after_step && !hooks.after_step({step, loss, lr_scale, norm, tok_s})) stopped = true;
    // Every rank stops together when any rank's hook asked to (a hook may be set on one rank only).
    if (distributed) stopped = comm.allreduce_sum(stopped ? 1.0 : 0.0, "the all-reduce of the stop request") > 0;

    const bool final_step = state.step == t.steps || stopped;
    if ((t.eval_every > 0 && state.step % t.eval_every == 0) || final_step) {
      const EvalStats e = eval_pass(model, data, t.eval_batches, comm);
      result.val_loss = e.loss;
      result.val_accuracy = e.accuracy;
      if (metrics)
        metrics->append(nlohmann::json{{"step", step}, {"val_loss", e.loss}, {"val_accuracy", e.accuracy}}.dump());
      progress.line(fmt::format("step {}: validation loss {:.4f}{}{}", state.step, e.loss,
                                data.mqar ? fmt::format(", recall accuracy {:.1f}%", 100 * e.accuracy) : "",
                                data.mqar || data.unigram_entropy <= 0
                                    ? ""
                                    : fmt::format(" (unigram entropy {:.3f})", data.unigram_entropy)));
      if (e.loss < state.best_val_loss) {
        state.best_val_loss = e.loss;
        if (root) save_run_checkpoint(best, model, "", {}, state, data, run_config);
      }
      result.best_val_loss = state.best_val_loss;
    }
    // Metrics reached the file (each append is flushed) before the checkpoint that covers them,
    // so a kill in between loses no record a resume would not redo.
    if ((t.save_every > 0 && state.step % t.save_every == 0) || final_step) {
      // A finite gradient can still push a weight to inf (the next loss would show it, but this
      // save comes first): checked here, once per save rather than every step.
      try {
        models::check_finite_parameters(params, fmt::format("after the update of step {}", step));
      } catch (const ValueError& e) {
        const bool any = root && fs::exists(last + "/trainer_state.json");
        throw ValueError(fmt::format(
            "[train] the weights became non-finite ({}); stopped without saving them. The last checkpoint ({}) is "
            "from step {}: lower optimizer.lr or set train.clip and resume from it",
            e.what(), any ? last : "none yet", any ? read_trainer_state(last + "/trainer_state.json").step : 0));
      }
      // Without sharding every rank updates its own copy of the weights; ranks with other thread
      // counts (other machines) can round differently, so the copies are made rank 0's again
      // here, the weights the checkpoint holds.
      if (distributed && !sharded) broadcast_parameters(comm, params);
      // A sharded optimizer's parts are gathered, so the checkpoint is the same for any number of ranks.
      const TensorDict optimizer_state = gather_optimizer_state(comm, *optimizer, sharded);
      if (root) save_run_checkpoint(last, model, optimizer->name(), optimizer_state, state, data, run_config);
    }
  }
  result.steps = state.step;
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (reducer) result.communication_seconds = reducer->stats().finish_seconds + reducer->stats().gather_seconds;
  if (data.tokenizer) {
    result.tokenizer = data.tokenizer;
    result.sample_prompt = data.tokenizer->encode(t.sample_prompt);
    if (result.sample_prompt.empty())
      result.sample_prompt = {static_cast<int32_t>(data.val_batch(0).ids.to_vector<int64_t>()[0])};
  }
  return result;
}

}  // namespace

TrainResult train(const TrainConfig& config, const TrainHooks& hooks) {
  return train(config, hooks, dist::Communicator::world());
}

TrainResult train(const TrainConfig& config, const TrainHooks& hooks, dist::Communicator& comm) {
  return dist::run_or_abort(comm, [&] { return run_training(config, hooks, comm); });
}

EvalResult evaluate_checkpoint(const std::string& checkpoint_dir, const TrainConfig& config, int64_t batches) {
  LNX_CHECK(batches > 0, ValueError, "[eval] batches must be positive, got {}", batches);
  std::unique_ptr<models::LMModel> model = models::load_model(checkpoint_dir);
  const std::string tok = checkpoint_dir + "/tokenizer.json";
  // Scratch space for tokenized data: removed however this ends, and so are the scratch
  // directories of earlier evals that were killed.
  const ScratchDir scratch("lnx-eval-");
  const RunData data = prepare_run_data(config, scratch.path.string(), checkpoint_dir,
                                        config.data.source != "mqar" && fs::exists(tok) ? tok : "");
  LNX_CHECK(data.vocab_size <= model->config().vocab_size, ValueError,
            "[eval] the data has {} token ids but the model's vocabulary is {}", data.vocab_size,
            model->config().vocab_size);
  const EvalStats s = eval_pass(*model, data, batches);
  LNX_CHECK(std::isfinite(s.loss), ValueError, "[eval] the loss of '{}' is {}: its activations overflow on this data",
            checkpoint_dir, s.loss);
  EvalResult r;
  r.loss = s.loss;
  r.perplexity = std::exp(s.loss);
  r.accuracy = s.accuracy;
  r.tokens = s.tokens;
  return r;
}

}  // namespace lnx::train
