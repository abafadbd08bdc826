#include "cli/commands.h"

#include <fmt/core.h>

#include <chrono>
#include <cmath>

#include "tensor/cpu/blas.h"
#include "tensor/cpu/cpu_features.h"
#include "tensor/cpu/parallel.h"
#include "tensor/ops.h"

namespace lnx::cli {

namespace {

struct DemoOptions {
  int steps = 300;
  uint64_t seed = 0;
  int threads = 0;  // 0 = default
};

int run_demo(const DemoOptions& options);
int run_info();

}  // namespace

void add_demo_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<DemoOptions>();
  auto* demo = app.add_subcommand("demo",
                                  "Train a small two-layer classifier with autodiff and check its gradient "
                                  "(a check of the autodiff engine)");
  demo->add_option("--steps", opt->steps, "gradient steps")->check(CLI::Range(1, 100000));
  demo->add_option("--seed", opt->seed, "random seed");
  demo->add_option("--threads", opt->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
  demo->callback([opt, &action] { action = [opt] { return run_demo(*opt); }; });
}

void add_info_command(CLI::App& app, Action& action) {
  auto opt = std::make_shared<ModelInfoOptions>();
  auto* info = app.add_subcommand("info",
                                  "Show the CPU features, BLAS kernels and thread count in use; with "
                                  "--preset, --config or --checkpoint, a model's layer table, parameters and "
                                  "FLOPs/token");
  info->add_option("--preset", opt->preset, "a preset name (see `linearnexus list presets`)");
  info->add_option("--config", opt->config, "a model config YAML file");
  info->add_option("--checkpoint", opt->checkpoint, "a checkpoint or Hugging Face model directory");
  info->add_option("--context", opt->context, "context length for the FLOPs count")->capture_default_str();
  info->callback([opt, &action] {
    action = [opt] {
      run_info();
      return opt->preset.empty() && opt->config.empty() && opt->checkpoint.empty() ? 0 : run_model_info(*opt);
    };
  });
}

namespace {

int run_info() {
  const auto& cpu = cpu_features();
  const auto& b = blas_info();
  fmt::print("cpu:     avx2={} fma={} avx512f={} avx512bw={} avx512_bf16={}\n", cpu.avx2, cpu.fma, cpu.avx512f,
             cpu.avx512bw, cpu.avx512_bf16);
  fmt::print("blas:    {} (core {}, {} threading){}\n", b.library, b.core, b.threading,
             b.overridden ? ", OPENBLAS_CORETYPE overridden" : "");
  fmt::print("config:  {}\n", b.config);
  fmt::print("threads: {}\n", num_threads());
  return 0;
}

// The demo: a two-layer MLP classifying points of three interleaved spirals, trained with
// plain gradient descent through value_and_grad; then one gradient is checked against
// central finite differences in f64.
int run_demo(const DemoOptions& opt) {
  if (opt.threads > 0) set_num_threads(opt.threads);
  const auto& b = blas_info();
  fmt::print("linearnexus demo: {} threads, BLAS {} ({} kernels)\n", num_threads(), b.library, b.core);

  const int64_t per_class = 200, classes = 3, hidden = 64;
  const int64_t n = per_class * classes;
  Generator gen(opt.seed);
  // Spiral data: class c points at angle t·4 + c·2π/3 + noise, radius t.
  std::vector<double> xs(n * 2);
  std::vector<int64_t> ys(n);
  for (int64_t c = 0; c < classes; ++c)
    for (int64_t i = 0; i < per_class; ++i) {
      double t = static_cast<double>(i) / per_class;
      double ang = t * 4.0 + c * 2.0 * M_PI / classes + gen.normal() * 0.2;
      xs[(c * per_class + i) * 2] = t * std::cos(ang);
      xs[(c * per_class + i) * 2 + 1] = t * std::sin(ang);
      ys[c * per_class + i] = c;
    }
  Tensor x = from_vector<double>(xs, {n, 2}).to(DType::f32);
  Tensor y = from_vector<int64_t>(ys, {n});

  TensorDict params{
      {"fc1.weight", mul(randn({2, hidden}, gen), std::sqrt(2.0 / 2))},
      {"fc1.bias", zeros({hidden})},
      {"fc2.weight", mul(randn({hidden, classes}, gen), std::sqrt(1.0 / hidden))},
      {"fc2.bias", zeros({classes})},
  };
  auto forward = [&](const TensorDict& p, const Tensor& input) {
    Tensor h = gelu(add(matmul(input, p["fc1.weight"]), p["fc1.bias"]));
    return add(matmul(h, p["fc2.weight"]), p["fc2.bias"]);
  };
  auto loss_fn = [&](const TensorDict& p) { return cross_entropy(forward(p, x), y); };
  auto step_fn = value_and_grad(loss_fn);

  const double lr = 1.0;
  auto t0 = std::chrono::steady_clock::now();
  double first = 0, last = 0;
  for (int step = 0; step < opt.steps; ++step) {
    ValueAndGrad r = step_fn(params);
    last = r.value.item();
    if (step == 0) first = last;
    TensorDict next;
    for (const auto& [name, p] : params) next.insert(name, sub(p, mul(r.grads[name], lr)));
    params = std::move(next);
    if (step % std::max(1, opt.steps / 10) == 0 || step == opt.steps - 1)
      fmt::print("step {:5d}  loss {:.4f}\n", step, last);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Tensor pred = argmax(forward(params, x), -1);
  double acc = mean(equal(pred, y).to(DType::f32)).item();
  fmt::print("trained {} steps in {:.2f}s: loss {:.4f} -> {:.4f}, accuracy {:.1f}% (chance 33.3%)\n", opt.steps, secs,
             first, last, acc * 100);

  // Gradient check of d loss / d fc2.bias in f64: autodiff vs central differences.
  TensorDict p64;
  for (const auto& [name, p] : params) p64.insert(name, p.to(DType::f64));
  Tensor x64 = x.to(DType::f64);
  auto loss64 = [&](const TensorDict& p) { return cross_entropy(forward(p, x64), y); };
  ValueAndGrad r = value_and_grad(loss64)(p64);
  Tensor bias = p64["fc2.bias"];
  double worst = 0;
  for (int64_t k = 0; k < classes; ++k) {
    const double eps = 1e-6, orig = bias.at({k});
    bias.set({k}, orig + eps);
    double fp = loss64(p64).item();
    bias.set({k}, orig - eps);
    double fm = loss64(p64).item();
    bias.set({k}, orig);
    double numeric = (fp - fm) / (2 * eps), analytic = r.grads["fc2.bias"].at({k});
    fmt::print("d loss / d fc2.bias[{}]: autodiff {:+.10f}  finite differences {:+.10f}\n", k, analytic, numeric);
    worst = std::max(worst, std::abs(analytic - numeric));
  }
  fmt::print("gradient check: max abs difference {:.2e} ({})\n", worst, worst < 1e-6 ? "ok" : "MISMATCH");
  return worst < 1e-6 ? 0 : 1;
}

}  // namespace
}  // namespace lnx::cli
