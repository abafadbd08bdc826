// Load, prefill and decode of a model directory (a Hugging Face directory or a checkpoint),
// timed in one process with the sgemm ceiling of the same run. scripts/bench_hf_mamba2.py runs
// it next to transformers on the same directory; it prints one JSON object on stdout.
//
//   bench_hf_generate DIR [--threads N] [--load-reps R] [--prefill 512,2048] [--prefill-reps R]
//                         [--contexts 128,512] [--decode-tokens 64] [--load-only]
//
// load_s: the first models::load_model(DIR) of the process; load_best_s: the best of R more.
// Prefill: one Session::prefill (chunk mode, logits of every position) over a prompt of each
// length, after one untimed prefill; best of R. Decode: after a prompt of each context, one
// untimed greedy step, then decode_tokens greedy steps (Session::step, argmax of the last
// logits), mean ms per token. Then the M = 1 products of one decoding step (every *_proj
// weight and the head) through the library's gemm (cblas_sgemm) and through cblas_sgemv.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include <fmt/ranges.h>

#include "bench_common.h"
#include "generate/session.h"
#include "models/checkpoint.h"
#include "tensor/ops.h"

namespace {

using namespace lnx;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoll(item));
  return out;
}

std::string json_list(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt::format("{:.6g}", v[i]);
  return s + "]";
}

int32_t greedy(const Tensor& logits) { return static_cast<int32_t>(argmax(logits, -1).item()); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_hf_generate DIR [--threads N] [--load-reps R] [--prefill 512,2048] "
                 "[--prefill-reps R] [--contexts 128,512] [--decode-tokens 64] [--load-only]\n");
    return 2;
  }
  const std::string dir = argv[1];
  int threads = 0, load_reps = 3, prefill_reps = 2;
  std::vector<int64_t> prefill = {512, 2048}, contexts = {128, 512};
  int64_t decode_tokens = 64;
  bool load_only = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads")
      threads = std::stoi(value());
    else if (a == "--load-reps")
      load_reps = std::stoi(value());
    else if (a == "--prefill")
      prefill = parse_list(value());
    else if (a == "--prefill-reps")
      prefill_reps = std::stoi(value());
    else if (a == "--contexts")
      contexts = parse_list(value());
    else if (a == "--decode-tokens")
      decode_tokens = std::stoll(value());
    else if (a == "--load-only")
      load_only = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  try {
    if (threads > 0) set_num_threads(threads);
    // The first load of the process, then the best of load_reps more.
    auto t0 = Clock::now();
    std::unique_ptr<models::LMModel> model = models::load_model(dir);
    const double load_s = seconds_since(t0);
    double load_best_s = load_s;
    for (int r = 0; r < load_reps; ++r) {
      model.reset();
      t0 = Clock::now();
      model = models::load_model(dir);
      load_best_s = std::min(load_best_s, seconds_since(t0));
    }
    std::string json = fmt::format(R"({{"threads": {}, "blas_core": "{}", "params": {}, "load_s": {:.6g}, )"
                                   R"("load_best_s": {:.6g})",
                                   num_threads(), blas_info().core, model->num_parameters(), load_s, load_best_s);
    if (load_only) {
      std::printf("%s}\n", json.c_str());
      return 0;
    }
    const double sgemm = measure_sgemm_gflops(1024);
    const int64_t V = model->config().vocab_size;
    Generator gen(0);
    auto tokens = [&](int64_t n) {
      const std::vector<int64_t> v = randint({n}, 0, V, gen, DType::i64).to_vector<int64_t>();
      return std::vector<int32_t>(v.begin(), v.end());
    };
    {  // warm-up: the allocator's cache, OpenMP's threads, the BLAS
      generate::Session s(*model);
      s.prefill(tokens(prefill.empty() ? 64 : prefill[0]));
    }
    std::vector<double> prefill_tps, prefill_gflops;
    for (int64_t P : prefill) {
      const std::vector<int32_t> prompt = tokens(P);
      double best = 1e30;
      for (int r = 0; r < prefill_reps; ++r) {
        generate::Session s(*model);
        t0 = Clock::now();
        s.prefill(prompt);
        best = std::min(best, seconds_since(t0));
      }
      prefill_tps.push_back(static_cast<double>(P) / best);
      prefill_gflops.push_back(model->flops_per_token(P) * static_cast<double>(P) / best / 1e9);
      std::fprintf(stderr, "ours: prefill %lld tokens: %.0f tokens/s\n", static_cast<long long>(P), prefill_tps.back());
    }
    std::vector<double> decode_ms;
    for (int64_t C : contexts) {
      generate::Session s(*model);
      int32_t next = greedy(s.prefill(tokens(C)));
      next = greedy(s.step(next));  // warm-up
      t0 = Clock::now();
      for (int64_t i = 0; i < decode_tokens; ++i) next = greedy(s.step(next));
      decode_ms.push_back(seconds_since(t0) * 1e3 / static_cast<double>(decode_tokens));
      std::fprintf(stderr, "ours: decode after %lld: %.2f ms/token\n", static_cast<long long>(C), decode_ms.back());
    }
    // Where decoding's time goes: one step multiplies one row by every projection weight and the
    // head (M = 1). Those products through gemm() (cblas_sgemm, as the library runs them) against
    // cblas_sgemv of the same BLAS, on the model's own weights, best of 5.
    double matmul_sgemm_ms = 0, matmul_sgemv_ms = 0;
    using Sgemv = void (*)(int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
    void* handle = dlopen(blas_info().library.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    auto sgemv = handle ? reinterpret_cast<Sgemv>(dlsym(handle, "cblas_sgemv")) : nullptr;
    if (sgemv && model->dtype() == DType::f32) {
      std::vector<Tensor> weights;  // [out, in]
      for (const auto& [name, p] : model->parameters()) {
        const bool proj = p.dim() == 2 && name.size() > 12 && name.compare(name.size() - 12, 12, "_proj.weight") == 0;
        const bool head = name == "lm_head.weight" || (name == "embeddings.weight" && !model->lm_head);
        if (proj || head) weights.push_back(contiguous(p.detach()));
      }
      int64_t widest = 0, tallest = 0;
      for (const Tensor& w : weights) widest = std::max(widest, w.size(1)), tallest = std::max(tallest, w.size(0));
      std::vector<float> x(static_cast<size_t>(widest), 0.01f), y(static_cast<size_t>(tallest));
      auto pass = [&](bool gemv) {
        for (const Tensor& w : weights) {
          const int out = static_cast<int>(w.size(0)), in = static_cast<int>(w.size(1));
          const float* W = w.data<float>();
          if (gemv)
            sgemv(101 /* row major */, 111 /* no trans */, out, in, 1.0f, W, in, x.data(), 1, 0.0f, y.data(), 1);
          else
            gemm(Transpose::No, Transpose::Yes, 1, out, in, 1.0f, x.data(), in, W, in, 0.0f, y.data(), out);
        }
      };
      pass(false);
      pass(true);
      matmul_sgemm_ms = bench::best_seconds(5, [&] { pass(false); }) * 1e3;
      matmul_sgemv_ms = bench::best_seconds(5, [&] { pass(true); }) * 1e3;
      std::fprintf(stderr, "ours: a step's M = 1 products: %.2f ms through sgemm, %.2f ms through sgemv\n",
                   matmul_sgemm_ms, matmul_sgemv_ms);
    }
    const double sgemm_end = measure_sgemm_gflops(1024);
    json += fmt::format(R"(, "sgemm_gflops": {:.6g}, "sgemm_end_gflops": {:.6g}, "prefill": {}, )"
                        R"("prefill_tokens_per_s": {}, "prefill_gflops": {}, "contexts": {}, )"
                        R"("decode_tokens": {}, "decode_ms_per_token": {}, "step_matmul_sgemm_ms": {:.6g}, )"
                        R"("step_matmul_sgemv_ms": {:.6g}}})",
                        sgemm, sgemm_end, fmt::format("[{}]", fmt::join(prefill, ", ")), json_list(prefill_tps),
                        json_list(prefill_gflops), fmt::format("[{}]", fmt::join(contexts, ", ")), decode_tokens,
                        json_list(decode_ms), matmul_sgemm_ms, matmul_sgemv_ms);
    std::printf("%s\n", json.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_hf_generate: %s\n", e.what());
    return 1;
  }
  return 0;
}
