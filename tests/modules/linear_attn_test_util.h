// Helpers of the linear-attention-family mixer tests (linear_attn_test.cpp,
// gated_linear_attn_test.cpp): small dims and configs, running a mixer, and the pieces of the
// recipes recomputed with plain ops in f64.
//   B batch, T time, D model width, H heads, W conv width.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/mechanism.h"
#include "modules/mixer.h"
#include "tensor/ops.h"

namespace lnx::modules::la_test {

inline constexpr int64_t kD = 16;

inline ModelDims dims_of(int64_t d_model = kD, int64_t layer_idx = 0, int64_t n_layer = 1) {
  ModelDims d;
  d.d_model = d_model;
  d.norm_eps = 1e-5;
  d.layer_idx = layer_idx;
  d.n_layer = n_layer;
  return d;
}

// The spec's defaults with 2 heads and chunk 16 (head_dim 0: K, V from expand_k, expand_v).
inline MixerConfig config_of(const std::string& name) {
  MixerConfig c = mixer_spec(name).defaults;
  c.set("num_heads", 2);
  c.set("chunk_size", 16);
  return c;
}
// The same, typed (C: the mixer's config struct, e.g. RetNetConfig).
template <class C> C config_of(const std::string& name) { return config_of(name).as<C>(); }

inline std::map<std::string, Shape> shapes_of(const Module& m) {
  std::map<std::string, Shape> out;
  for (const auto& [name, t] : m.parameters()) out[name] = t.shape();
  return out;
}

inline Tensor input(int64_t B, int64_t T, uint64_t seed = 11) {
  Generator gen(seed);
  return randn({B, T, kD}, gen, DType::f64);
}

inline std::unique_ptr<Mixer> make64(const std::string& name, const MixerConfig& c, const ModelDims& d = dims_of()) {
  Generator gen(5);
  auto m = make_mixer(name, c, d, gen);
  m->to(DType::f64);
  return m;
}

inline MixerOutput run(const Mixer& m, const Tensor& x, const core::LayerState* state = nullptr,
                       core::Mode mode = core::Mode::chunk, std::vector<int64_t> seen = {},
                       const Tensor& cu = Tensor()) {
  MixerInput in;
  in.x = x;
  in.state = state;
  in.mode = mode;
  in.seen = std::move(seen);
  in.cu_seqlens = cu;
  return m.forward(in);
}

inline Tensor lin(const Tensor& x, const Tensor& w) { return matmul(x, transpose(w, 0, 1)); }
inline Tensor heads(const Tensor& x, int64_t H) { return reshape(x, {x.size(0), x.size(1), H, -1}); }
inline Tensor merge(const Tensor& x) { return reshape(x, {x.size(0), x.size(1), -1}); }
inline Tensor rmsnorm(const Tensor& x, const Tensor& w, double eps) {
  return mul(div(x, sqrt(add(mean(square(x), {-1}, true), eps))), w);
}
// Causal depthwise conv from zero history: y[t, c] = Σ_w W[c, w] x[t − (W−1) + w, c].
inline Tensor causal_conv(const Tensor& x, const Tensor& w) {
  const int64_t T = x.size(1), W = w.size(1);
  Tensor xp = pad(x, {{0, 0}, {W - 1, 0}});
  Tensor y = zeros_like(x);
  for (int64_t i = 0; i < W; ++i) y = add(y, mul(slice(xp, 1, i, i + T), select(w, 1, i)));
  return y;
}
inline kernels::MechanismOutputs reference(const std::string& kernel, const TensorDict& in, bool normalize = false) {
  kernels::MechanismOptions o;
  if (normalize) o.set("normalize", true);
  return kernels::run(kernel, kernels::Form::reference, in, o);
}

}  // namespace lnx::modules::la_test
