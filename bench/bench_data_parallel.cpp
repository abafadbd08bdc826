// Data-parallel training steps, run under mpirun (or alone): each of the R ranks trains a preset
// on its B/R rows of a B × T batch, and the program reports, per rank 0, in one JSON line:
//   step_s        a data-parallel step: forward, backward with the gradient buckets all-reduced
//                 as they become final, finish (waiting for the rest), clipping, AdamW
//   compute_s     the same step on the same rows with no communication at all, measured in the
//                 same run while the other ranks do the same (so they share the machine alike)
//   exposed_s     time in GradientReducer::finish: communication the backward did not hide
//   comm_s        the same buckets all-reduced after the backward (nothing to hide behind): the
//                 whole communication time; overlap = 1 − exposed_s / comm_s
//   sgemm_gflops  this rank's sgemm rate (1024³, its threads) at the start: the ceiling
// Steps alternate between the two kinds (A/B in one sitting); each figure is the median.
// `bench_data_parallel allreduce` instead times all-reduces of 4 KiB … 64 MiB (f32) and fits
// t = α + β·bytes (α the fastest message of ≤ 64 KiB, β the slope between the two largest), the
// loopback figures docs/scaling.md's cost model is checked against.
//
// Usage: bench_data_parallel PRESET B T STEPS | bench_data_parallel allreduce
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/gradient_reducer.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "tensor/autograd.h"
#include "tensor/cpu/blas.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"
#include "train/clip.h"
#include "train/optim.h"

namespace {

using namespace lnx;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int run_allreduce(dist::Communicator& comm) {
  std::vector<double> sizes, times;
  for (int64_t bytes = 4096; bytes <= (int64_t{64} << 20); bytes *= 4) {
    std::vector<float> buf(static_cast<size_t>(bytes / 4), 1.0f);
    std::vector<double> t;
    for (int rep = 0; rep < 12; ++rep) {
      comm.barrier("barrier");
      const auto t0 = Clock::now();
      dist::Request r = comm.allreduce_sum_start(buf.data(), static_cast<int64_t>(buf.size()), DType::f32, "bench");
      comm.wait(r);
      t.push_back(since(t0));
    }
    sizes.push_back(static_cast<double>(bytes));
    times.push_back(median(t));
    if (comm.root())
      fmt::print("{{\"bytes\": {}, \"seconds\": {:.6e}, \"ranks\": {}}}\n", bytes, times.back(), comm.size());
  }
  // α: the fastest small message (latency); β: the slope between the two largest (bandwidth).
  double alpha = 1e30;
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] <= 65536) alpha = std::min(alpha, times[i]);
  const size_t n = sizes.size();
  const double beta = (times[n - 1] - times[n - 2]) / (sizes[n - 1] - sizes[n - 2]);
  if (comm.root())
    fmt::print(
        "{{\"fit\": \"t = alpha + beta*bytes\", \"alpha_s\": {:.3e}, \"beta_s_per_byte\": {:.3e}, "
        "\"ring_bandwidth_GBps\": {:.2f}, \"ranks\": {}}}\n",
        alpha, beta, 2.0 * (comm.size() - 1) / comm.size() / beta / 1e9, comm.size());
  return 0;
}

int run_steps(dist::Communicator& comm, const std::string& preset, int64_t B, int64_t T, int64_t steps) {
  const int R = comm.size();
  const int64_t rows = B / R + (comm.rank() < B % R ? 1 : 0);
  const double sgemm = measure_sgemm_gflops(1024);
  models::ModelConfig config = models::preset_config(preset);
  models::LMModel model(config, 0);
  const TensorDict params = model.parameters();
  Generator gen(static_cast<uint64_t>(1 + comm.rank()));
  const Tensor ids = randint({rows, T}, 0, config.vocab_size, gen, DType::i64);
  const Tensor targets = randint({rows, T}, 0, config.vocab_size, gen, DType::i64);
  std::unique_ptr<train::Optimizer> optimizer = train::make_optimizer(train::OptimizerConfig{}, params);
  dist::GradientReducer reducer(comm, params, {int64_t{4} << 20, false});
  const double weight = static_cast<double>(rows) / static_cast<double>(B);
  auto update = [&] {
    train::clip_grad_norm(params, 1.0);
    optimizer->step(1.0);
    for (const auto& [name, p] : params) p.zero_grad();
  };
  // kind 0: data-parallel step; 1: compute only; 2: backward, then every bucket all-reduced.
  std::vector<double> step_s, compute_s, exposed_s, comm_s;
  for (int64_t i = 0; i < steps + 1; ++i)
    for (int kind = 0; kind < 3; ++kind) {
      comm.barrier("barrier");
      const auto t0 = Clock::now();
      const Tensor loss = mul(model.loss(ids, targets), weight);
      double exposed = 0, comm_time = 0;
      if (kind == 0) {
        backward({loss}, {}, false, reducer.hook());
        const double before = reducer.stats().finish_seconds;
        reducer.finish();
        exposed = reducer.stats().finish_seconds - before;
      } else {
        loss.backward();
        if (kind == 2) {
          const double before = reducer.stats().finish_seconds;
          reducer.finish();
          comm_time = reducer.stats().finish_seconds - before;
        }
      }
      update();
      const double s = since(t0);
      if (i == 0) continue;  // warm-up
      if (kind == 0) {
        step_s.push_back(s);
        exposed_s.push_back(exposed);
      } else if (kind == 1) {
        compute_s.push_back(s);
      } else {
        comm_s.push_back(comm_time);
      }
    }
  if (comm.root()) {
    const double step = median(step_s), compute = median(compute_s), exposed = median(exposed_s),
                 total_comm = median(comm_s);
    const auto buckets = reducer.bucket_sizes();
    int64_t grad_bytes = 0;
    for (int64_t b : buckets) grad_bytes += b;
    fmt::print(
        "{{\"preset\": \"{}\", \"ranks\": {}, \"threads\": {}, \"B\": {}, \"T\": {}, \"rows_per_rank\": {}, "
        "\"params_M\": {:.2f}, \"grad_MB\": {:.2f}, \"buckets\": {}, \"step_s\": {:.4f}, \"compute_s\": {:.4f}, "
        "\"exposed_s\": {:.4f}, \"comm_s\": {:.4f}, \"step_over_compute\": {:.3f}, \"overlap\": {:.2f}, "
        "\"sgemm_gflops\": {:.0f}}}\n",
        preset, R, num_threads(), B, T, rows, static_cast<double>(model.num_parameters()) / 1e6,
        static_cast<double>(grad_bytes) / 1e6, buckets.size(), step, compute, exposed, total_comm, step / compute,
        total_comm > 0 ? 1.0 - exposed / total_comm : 0.0, sgemm);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Communicator& comm = dist::Communicator::world();
  if (argc == 2 && std::string(argv[1]) == "allreduce") return run_allreduce(comm);
  if (argc != 5) {
    fmt::print(stderr, "usage: bench_data_parallel PRESET B T STEPS | bench_data_parallel allreduce\n");
    return 2;
  }
  return run_steps(comm, argv[1], std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4]));
}
