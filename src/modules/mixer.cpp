#include "modules/mixer.h"

#include <algorithm>
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

std::unique_ptr<Mixer> make_mixer(const std::string& name, const MixerConfig& config, const ModelDims& dims,
                                  Generator& gen) {
  return mixer_spec(name).make(config, dims, gen);
}

}  // namespace lnx::modules
