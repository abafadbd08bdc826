// Every registered mechanism's recurrent and chunk forms, forward and forward+backward, at
// B·H = 8 (B = 1, H = 8), T ∈ {512, 2048, 8192}, K = V = D ∈ {64, 128}, f32.
// Counters: tokens/s, GFLOP/s of useful work (Mechanism::flops: the recurrence's state update
// and read, 4·K·V per token and head, plus the chunk form's intra-chunk attention,
// 2·S·(K+V) per token and head; backward counted as 2× forward), and ratio_to_sgemm, the
// GFLOP/s over the sgemm rate measured at the start of this run (1024³, same BLAS, all
// threads), and blas_ms: per iteration, the time spent inside BLAS calls summed over threads
// and divided by the thread count — what the form would take if all its work but the GEMMs
// were free — and blas_GFLOP, the FLOPs of those calls per iteration. The backward is seeded with a random do
// (o.backward(do)), so only the form's own forward and vjp are timed.
#include "bench_common.h"
#include "kernels/mechanism.h"
#include "tensor/ops.h"
#include "tensor/profile.h"

namespace lnx::bench {
namespace {

void run_mechanism_unchecked(benchmark::State& st, const std::string& name, kernels::Form form, bool backward) {
  const int64_t T = st.range(0), D = st.range(1);
  const kernels::Mechanism& m = kernels::mechanism(name);
  kernels::ProblemSize size{1, T, 8, D, D};
  Generator gen(0);
  TensorDict in = m.make_inputs(size, gen, DType::f32);
  if (m.has_recurrent_state) in.insert("initial_state", zeros({1, size.H, D, D}));
  Tensor d_o = randn({1, T, size.H, D}, gen);
  TensorDict leaves;
  for (const auto& [n, t] : in) {
    Tensor leaf = t.detach();
    if (backward && is_floating(leaf.dtype())) leaf.set_requires_grad();
    leaves.insert(n, leaf);
  }
  profile_reset();
  profile_enable(true);
  for (auto _ : st) {
    if (backward) {
      kernels::MechanismOutputs out = kernels::run(name, form, leaves);
      out.o.backward(d_o);
      for (const auto& [n, t] : leaves) t.zero_grad();
    } else {
      NoGradGuard no_grad;
      benchmark::DoNotOptimize(kernels::run(name, form, leaves));
    }
  }
  profile_enable(false);
  const double flops = (m.flops ? m.flops(size, form, 64) : 0.0) * (backward ? 3.0 : 1.0);
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(T), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["sgemm_GFLOP/s"] = sgemm_ceiling();
  const ProfileTotals prof = profile_totals();
  st.counters["blas_ms"] =
      prof.blas_thread_seconds * 1e3 / static_cast<double>(num_threads() * std::max<int64_t>(st.iterations(), 1));
  st.counters["blas_GFLOP"] = prof.blas_flops / 1e9 / static_cast<double>(std::max<int64_t>(st.iterations(), 1));
}

// A library error ends this benchmark with its message instead of the whole run.
void run_mechanism(benchmark::State& st, const std::string& name, kernels::Form form, bool backward) {
  try {
    run_mechanism_unchecked(st, name, form, backward);
  } catch (const Error& e) {
    st.SkipWithError(e.what());
  }
}

}  // namespace
}  // namespace lnx::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  lnx::bench::add_context();
  lnx::bench::add_sgemm_context();
  for (const auto& name : lnx::kernels::mechanism_names())
    for (auto form : {lnx::kernels::Form::recurrent, lnx::kernels::Form::chunk})
      for (bool backward : {false, true}) {
        std::string label = fmt::format("{}/{}/{}", name, lnx::kernels::form_name(form), backward ? "fwd+bwd" : "fwd");
        auto* b = benchmark::RegisterBenchmark(
            label.c_str(), [=](benchmark::State& st) { lnx::bench::run_mechanism(st, name, form, backward); });
        b->ArgNames({"T", "D"})->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
        for (int64_t T : {512, 2048, 8192})
          for (int64_t D : {64, 128}) b->Args({T, D});
      }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
