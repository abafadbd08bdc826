// `linearnexus bench train`: time training steps of a model on random tokens, the step the
// trainer runs (forward, mean cross entropy, backward, global-norm clip, optimizer update, zeroed
// gradients), and say where a step's time goes (tensor/profile.h's categories). The model,
// optimizer, batch and sequence come from a training config and/or section.key=value
// overrides, as for `train`. bench/compare_pytorch.py runs it beside the same model in PyTorch.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "models/lm_model.h"
#include "tensor/cpu/blas.h"
#include "tensor/cpu/gemm_bf16.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"
#include "tensor/profile.h"
#include "train/clip.h"
#include "train/optim.h"
#include "train/train_config.h"

namespace lnx::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchTrainOptions {
  std::string config, preset;
  std::vector<std::string> overrides;
  int64_t steps = 10, warmup = 2;
  bool json = false, no_sgemm = false;
};

int run_bench_train(const BenchTrainOptions& o) {
  LNX_CHECK(o.steps >= 1 && o.steps <= 100000, ValueError, "[bench train] --steps must be 1 … 100000, got {}", o.steps);
  LNX_CHECK(o.warmup >= 0 && o.warmup <= 1000, ValueError, "[bench train] --warmup must be 0 … 1000, got {}", o.warmup);
  std::vector<std::string> overrides;
  if (!o.preset.empty()) overrides.push_back("model.preset=" + o.preset);
  overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
  const train::TrainConfig c = train::load_train_config(o.config, overrides);
  const int64_t B = c.train.batch_size, T = c.train.seq_len, V = c.model.vocab_size;
  LNX_CHECK(B > 0 && T > 0, ValueError,
            "[bench train] train.batch_size and train.seq_len must be positive, got {} and {}", B, T);
  LNX_CHECK(c.train.clip >= 0, ValueError, "[bench train] train.clip must be ≥ 0 (0 = off), got {}", c.train.clip);
  models::LMModel model(c.model, static_cast<uint64_t>(c.train.seed));
  const TensorDict params = model.parameters();
  std::unique_ptr<train::Optimizer> optimizer = train::make_optimizer(c.optimizer, params);
  Generator gen(static_cast<uint64_t>(c.train.seed) + 1);
  const Tensor ids = randint({B, T}, 0, V, gen, DType::i64);
  const Tensor targets = randint({B, T}, 0, V, gen, DType::i64);
  models::ForwardOptions fwd;
  fwd.remat = c.train.remat;
  const MatmulPrecisionScope precision(parse_matmul_precision(c.train.precision));
  double loss = 0;
  auto step = [&] {
    Tensor l = model.loss(ids, targets, fwd);
    loss = l.item();
    l.backward();
    ProfileScope profile(ProfileCategory::optimizer);
    if (c.train.clip > 0) train::clip_grad_norm(params, c.train.clip);
    optimizer->step(1.0);
    for (const auto& [name, p] : params) p.zero_grad();
  };
  const double sgemm = o.no_sgemm ? 0.0 : measure_sgemm_gflops();
  const double peak_f32 = o.no_sgemm ? 0.0 : measure_peak_gflops(false);
  const double peak_bf16 = o.no_sgemm ? 0.0 : measure_peak_gflops(true);
  for (int64_t i = 0; i < o.warmup; ++i) step();
  std::vector<double> seconds;
  ProfileTotals p;
  {
    ProfileSession profiling;
    for (int64_t i = 0; i < o.steps; ++i) {
      const auto t0 = Clock::now();
      step();
      seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    p = profile_totals();
  }
  double total = 0;
  for (double s : seconds) total += s;
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double flops = 3.0 * model.flops_per_token(T) * static_cast<double>(B * T);
  const double rest = std::max(0.0, total - p.categorised_seconds());
  const nlohmann::json shares = {{"gemm", p.gemm_seconds / total},
                                 {"kernels", p.kernel_seconds / total},
                                 {"elementwise", (p.other_seconds + rest) / total},
                                 {"autodiff", p.autodiff_seconds / total},
                                 {"allocation", p.allocation_seconds / total},
                                 {"optimizer", p.optimizer_seconds / total}};
  const nlohmann::json out = {{"model", c.model.name},
                              {"params", model.num_parameters()},
                              {"batch", B},
                              {"seq_len", T},
                              {"optimizer", c.optimizer.name},
                              {"precision", c.train.precision},
                              {"threads", num_threads()},
                              {"steps", o.steps},
                              {"median_ms", median * 1e3},
                              {"mean_ms", total / static_cast<double>(o.steps) * 1e3},
                              {"tokens_per_s", static_cast<double>(B * T) / median},
                              {"gflops", flops / median / 1e9},
                              {"sgemm_gflops", sgemm},
                              {"peak_f32_gflops", peak_f32},
                              {"peak_bf16_gflops", peak_bf16},
                              {"last_loss", loss},
                              {"profiled_share", p.categorised_seconds() / total},  // ≤ 1: no time counted twice
                              {"shares", shares}};
  if (o.json) {
    fmt::print("{}\n", out.dump());
    return 0;
  }
  fmt::print("model {} ({:.2f}M parameters), batch {} × {} tokens, {}, {} matmuls, {} threads\n", c.model.name,
             static_cast<double>(model.num_parameters()) / 1e6, B, T, c.optimizer.name, c.train.precision,
             num_threads());
  fmt::print("step: median {:.1f} ms, mean {:.1f} ms over {} steps; {:.0f} tokens/s, {:.1f} GFLOP/s", median * 1e3,
             total / static_cast<double>(o.steps) * 1e3, o.steps, static_cast<double>(B * T) / median,
             flops / median / 1e9);
  if (sgemm > 0)
    fmt::print("\nceilings in this run: sgemm {:.0f} GFLOP/s ({:.2f} of it), f32 FMA peak {}, bf16 dot-product peak {}",
               sgemm, flops / median / 1e9 / sgemm, peak_f32 > 0 ? fmt::format("{:.0f}", peak_f32) : "n/a",
               peak_bf16 > 0 ? fmt::format("{:.0f}", peak_bf16) : "n/a (no AVX512_BF16)");
  fmt::print("\nwhere the time goes:");
  for (const auto& [name, share] : shares.items()) fmt::print(" {} {:.1f}%", name, 100 * share.get<double>());
  fmt::print("\n");
  return 0;
}

}  // namespace

void add_bench_train_command(CLI::App& bench, Action& action) {
  auto o = std::make_shared<BenchTrainOptions>();
  auto* cmd = bench.add_subcommand("train", "Time training steps on random tokens and show where a step's time goes");
  cmd->add_option("--config,-c", o->config, "a training config (model, optimizer, train.batch_size, train.seq_len)");
  cmd->add_option("--preset", o->preset, "a model preset");
  cmd->add_option("--steps", o->steps, "timed steps")->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "untimed steps first")->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON object");
  cmd->add_flag("--no-sgemm", o->no_sgemm, "skip the ceiling measurements (sgemm, FMA and bf16 peaks)");
  cmd->add_option("overrides", o->overrides, "section.key=value, e.g. model.d_model=384 train.batch_size=16");
  cmd->callback([o, &action] { action = [o] { return run_bench_train(*o); }; });
}

}  // namespace lnx::cli
