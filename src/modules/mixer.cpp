#include "modules/mixer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/varlen.h"
#include "modules/builtin.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::modules {

MixerOutput forward_masked(const Mixer& mixer, const Tensor& x, const Tensor& mask, const core::LayerState* state,
                           core::Mode mode, std::vector<int64_t> seen) {
  const core::Packing p = core::packing_from_mask(mask);
  MixerInput in;
  in.x = core::pack(x, p);
  in.state = state;
  in.cu_seqlens = p.cu_seqlens;
  in.mode = mode;
  in.seen = std::move(seen);
  MixerOutput out = mixer.forward(in);
  out.y = core::unpack(out.y, p);
  return out;
}

core::LayerState Mixer::select_sequence(const core::LayerState& state, int64_t n) const {
  core::LayerState out;
  for (const auto& [name, t] : state.tensors) {
    LNX_CHECK(t.dim() >= 1 && n >= 0 && n < t.size(0), ValueError,
              "[mixer] sequence {} is out of range for state '{}' {}", n, name, shape_str(t.shape()));
    out.set(name, slice(t, 0, n, n + 1));
  }
  return out;
}

CallShape call_shape(const MixerInput& in) {
  LNX_CHECK(in.x.defined() && in.x.dim() == 3, ShapeError, "[mixer] x must be [B, T, D], got {}",
            in.x.defined() ? shape_str(in.x.shape()) : std::string("an undefined tensor"));
  CallShape s;
  if (!in.cu_seqlens.defined()) {
    s.N = in.x.size(0);
    s.max_len = in.x.size(1);
    return s;
  }
  LNX_CHECK(in.x.size(0) == 1, ShapeError, "[mixer] with cu_seqlens x must be packed as [1, T, D], got {}",
            shape_str(in.x.shape()));
  const std::vector<int64_t> lengths = core::lengths_from_cu_seqlens(in.cu_seqlens, "mixer");
  s.N = static_cast<int64_t>(lengths.size());
  for (int64_t l : lengths) s.max_len = std::max(s.max_len, l);
  return s;
}

core::Mode call_mode(const MixerInput& in) { return core::select_mode(in.mode, call_shape(in).max_len); }

Tensor run_state_kernel(const std::string& kernel, TensorDict inputs, const MixerInput& in, int64_t chunk_size,
                        core::LayerState& state_out, kernels::MechanismOptions options) {
  if (in.state && in.state->has("recurrent")) inputs.insert("initial_state", in.state->get("recurrent"));
  options.chunk_size = chunk_size;
  options.cu_seqlens = in.cu_seqlens;
  options.output_final_state = true;
  const kernels::Form form = call_mode(in) == core::Mode::recurrent ? kernels::Form::recurrent : kernels::Form::chunk;
  kernels::MechanismOutputs out = kernels::run(kernel, form, inputs, options);
  state_out.set("recurrent", out.final_state);  // [N, H, K, V]
  return out.o;                                 // [B, T, H, V]
}

std::vector<int64_t> sequence_positions(const MixerInput& in, core::LayerState& state_out) {
  const int64_t N = call_shape(in).N;
  std::vector<int64_t> start;
  if (!in.seen.empty()) {
    LNX_CHECK(static_cast<int64_t>(in.seen.size()) == N, ValueError, "[mixer] seen has {} entries for {} sequences",
              in.seen.size(), N);
    start = in.seen;
  } else if (in.state && in.state->has("positions")) {
    const Tensor p = in.state->get("positions");
    LNX_CHECK(p.dim() == 1 && p.size(0) == N && !is_floating(p.dtype()), ShapeError,
              "[mixer] the state's positions must be [N={}] integers, got {} {}", N, dtype_name(p.dtype()),
              shape_str(p.shape()));
    start = to_dtype(p, DType::i64).to_vector<int64_t>();
  } else {
    start.assign(static_cast<size_t>(N), 0);
  }
  std::vector<int64_t> after = start;
  if (in.cu_seqlens.defined()) {
    const std::vector<int64_t> lengths = core::lengths_from_cu_seqlens(in.cu_seqlens, "mixer");
    for (size_t n = 0; n < after.size(); ++n) after[n] += lengths[n];
  } else {
    for (auto& a : after) a += in.x.size(1);
  }
  state_out.set("positions", from_vector(after, {N}));
  return start;
}

void check_chunk_size(const std::string& mixer, int64_t chunk_size) {
  LNX_CHECK(chunk_size > 0 && (chunk_size & (chunk_size - 1)) == 0, ValueError,
            "[{}] chunk_size = {}: expected a power of two", mixer, chunk_size);
}

namespace {
std::map<std::string, MixerSpec>& registry() {
  static std::map<std::string, MixerSpec> r;
  static std::once_flag once;
  std::call_once(once, [] {
    for (MixerSpec s : builtin_mixers()) {
      LNX_CHECK(!r.count(s.name), ValueError, "[mixers] '{}' is listed twice", s.name);
      r.emplace(s.name, std::move(s));
    }
  });
  return r;
}
}  // namespace

void register_mixer(MixerSpec spec) {
  auto& r = registry();
  LNX_CHECK(!r.count(spec.name), ValueError, "[mixers] mixer '{}' is already registered", spec.name);
  r.emplace(spec.name, std::move(spec));
}

std::vector<std::string> mixer_names() {
  std::vector<std::string> names;
  for (const auto& [name, s] : registry()) names.push_back(name);
  return names;
}

const MixerSpec& mixer_spec(const std::string& name) {
  auto& r = registry();
  auto it = r.find(name);
  LNX_CHECK(it != r.end(), ValueError, "[mixers] unknown mixer '{}'; registered: {}", name,
            fmt::join(mixer_names(), ", "));
  return it->second;
}

void check_mixer_config(const std::string& name, const MixerConfig& c) {
  // Configs come from files: every size is bounded and every real finite before any mixer
  // computes a width from them (a cast of inf or 1e300 to an integer is undefined).
  auto real = [&](const char* key, double v, double lo, double hi) {
    LNX_CHECK(std::isfinite(v) && v > lo && v <= hi, ValueError, "[{}] {} = {}: expected a number in ({}, {}]", name,
              key, v, lo, hi);
  };
  auto size = [&](const char* key, int64_t v, int64_t hi) {
    LNX_CHECK(v >= 0 && v <= hi, ValueError, "[{}] {} = {}: expected 0 … {}", name, key, v, hi);
  };
  real("expand_k", c.expand_k, 0, 64);
  real("expand_v", c.expand_v, 0, 64);
  real("expand", c.expand, 0, 64);
  real("rope_theta", c.rope_theta, 0, 1e12);
  real("gate_logit_normalizer", c.gate_logit_normalizer, 0, 1e6);
  size("num_heads", c.num_heads, 1 << 14);
  size("head_dim", c.head_dim, 1 << 16);
  size("num_kv_heads", c.num_kv_heads, 1 << 14);
  size("conv_size", c.conv_size, 1 << 10);
  size("window", c.window, int64_t{1} << 40);
  size("state_size", c.state_size, 1 << 16);
  size("dt_rank", c.dt_rank, 1 << 16);
  size("n_groups", c.n_groups, 1 << 14);
  size("gate_low_rank_dim", c.gate_low_rank_dim, 1 << 16);
  size("chunk_size", c.chunk_size, 1 << 16);
}

std::unique_ptr<Mixer> make_mixer(const std::string& name, const MixerConfig& config, const ModelDims& dims,
                                  Generator& gen) {
  const MixerSpec& spec = mixer_spec(name);
  check_mixer_config(name, config);
  return spec.make(config, dims, gen);
}

}  // namespace lnx::modules
