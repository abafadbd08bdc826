// Training steps of every "-small" preset at batch 8 × 512 tokens, f32: forward, mean cross
// entropy, backward, global-norm clipping and an AdamW update per iteration.
// Counters: tokens/s; GFLOP/s of the model's forward FLOPs/token × 3 (LMModel::flops_per_token
// at context 512, backward counted as 2× forward); ratio_to_sgemm against the sgemm rate
// measured at the start of this run (1024³, same BLAS, all threads); and where the time
// went: gemm_share (matmul ops: projections, MLP, LM head, forward and backward),
// kernel_share (mechanism kernels, forward and backward), rest_share (everything else:
// norms, activations, gates, convs, embedding, loss, autodiff bookkeeping, the optimizer).
// Argument chunk: 0 = the preset's chunk sizes; 32 or 64 = every mixer's chunk size set to it
// (the comparison behind the mixers' default chunk sizes).
#include "bench_common.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "tensor/ops.h"
#include "tensor/profile.h"
#include "train/clip.h"
#include "train/optim.h"

namespace lnx::bench {
namespace {

void run_model(benchmark::State& st, const std::string& preset) {
  const int64_t B = 8, T = 512;
  models::ModelConfig config = models::preset_config(preset);
  if (st.range(0) > 0)
    for (auto& [name, layer] : config.layers) layer.options.set("chunk_size", st.range(0));
  models::LMModel model(config, 0);
  Generator gen(1);
  Tensor ids = randint({B, T}, 0, config.vocab_size, gen, DType::i64);
  Tensor targets = randint({B, T}, 0, config.vocab_size, gen, DType::i64);
  const TensorDict params = model.parameters();
  std::unique_ptr<train::Optimizer> optimizer = train::make_optimizer(train::OptimizerConfig{}, params);
  auto step = [&] {
    Tensor loss = model.loss(ids, targets);
    loss.backward();
    train::clip_grad_norm(params, 1.0);
    optimizer->step(1.0);
    for (const auto& [name, p] : params) p.zero_grad();
  };
  step();  // warm the allocator cache
  profile_reset();
  profile_enable(true);
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : st) step();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  profile_enable(false);
  const ProfileTotals p = profile_totals();
  const double flops = 3.0 * model.flops_per_token(T) * static_cast<double>(B * T);
  st.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(B * T), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["sgemm_GFLOP/s"] = sgemm_ceiling();
  st.counters["params_M"] = static_cast<double>(model.num_parameters()) / 1e6;
  st.counters["gemm_share"] = p.gemm_seconds / total;
  st.counters["kernel_share"] = p.kernel_seconds / total;
  st.counters["rest_share"] = 1.0 - (p.gemm_seconds + p.kernel_seconds) / total;
}

}  // namespace
}  // namespace lnx::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  lnx::bench::add_context();
  lnx::bench::add_sgemm_context();
  for (const auto& p : lnx::models::presets()) {
    if (p.name.find("-small") == std::string::npos) continue;
    benchmark::RegisterBenchmark((p.name + "/train_step/B:8/T:512").c_str(),
                                 [name = p.name](benchmark::State& st) { lnx::bench::run_model(st, name); })
        ->ArgName("chunk")
        ->Arg(0)
        ->Arg(32)
        ->Arg(64)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
