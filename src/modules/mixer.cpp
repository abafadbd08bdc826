#include "modules/mixer.h"

#include <cxxabi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
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

core::Mode call_mode(const MixerInput& in) {
  // A training forward: gradients recorded through x, or checkpoint's first pass of a block
  // (unrecorded, but its recomputation will be): both passes pick the same form.
  const bool training = (grad_enabled() && in.x.requires_grad()) || in_checkpoint_forward();
  return core::select_mode(in.mode, call_shape(in).max_len, training);
}

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

// ---- MixerConfig ----

namespace {
std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  std::string s = status == 0 && out ? out.get() : name;
  const size_t colon = s.rfind("::");
  return colon == std::string::npos ? s : s.substr(colon + 2);  // lnx::modules::AttentionConfig → AttentionConfig
}
}  // namespace

const MixerConfig::Model& MixerConfig::model() const {
  LNX_CHECK(impl_, ValueError, "[mixer config] empty: it holds no mixer's options");
  return *impl_;
}

std::string MixerConfig::type_name() const { return impl_ ? demangle(impl_->type().name()) : "nothing"; }

bool MixerConfig::same_type(const MixerConfig& other) const {
  return impl_ && other.impl_ && impl_->type() == other.impl_->type();
}

void MixerConfig::check_holds(const std::type_info& t) const {
  LNX_CHECK(impl_ && impl_->type() == t, ValueError, "[mixer config] holds {}, not {}", type_name(),
            demangle(t.name()));
}

std::vector<core::FieldInfo> MixerConfig::fields() const { return model().fields(); }

std::vector<std::string> MixerConfig::keys() const {
  std::vector<std::string> out;
  for (const auto& f : fields()) out.push_back(f.name);
  return out;
}

bool MixerConfig::has(const std::string& key) const {
  const auto k = keys();
  return std::find(k.begin(), k.end(), key) != k.end();
}

namespace {
const core::FieldInfo* find_field(const std::vector<core::FieldInfo>& fields, const std::string& key) {
  for (const auto& f : fields)
    if (f.name == key) return &f;
  return nullptr;
}
}  // namespace

core::FieldValue MixerConfig::get(const std::string& key) const {
  const auto fs = fields();
  const core::FieldInfo* f = find_field(fs, key);
  LNX_CHECK(f, ValueError, "[{}] unknown option '{}'; options are {}", type_name(), key, fmt::join(keys(), ", "));
  LNX_CHECK(f->type == "bool" || f->type == "int" || f->type == "float" || f->type == "string", ValueError,
            "[{}] option '{}' is a {}", type_name(), key, f->type);
  return model().get(key);
}

void MixerConfig::set_value(const std::string& key, const core::FieldValue& value) {
  const auto fs = fields();
  const core::FieldInfo* f = find_field(fs, key);
  LNX_CHECK(f, ValueError, "[{}] unknown option '{}'; options are {}", type_name(), key, fmt::join(keys(), ", "));
  LNX_CHECK(impl_->set(key, value), ValueError, "[{}] option '{}' must be {}, got {}", type_name(), key, f->type,
            core::fields_detail::value_text(value));
}

void MixerConfig::check_bounds(const std::string& where) const { model().check_bounds(where); }

void MixerConfig::read_yaml(const YAML::Node& map, const std::string& where,
                            const std::vector<std::string>& extra_keys) {
  model();
  std::vector<std::string> valid = extra_keys;
  for (const auto& k : keys()) valid.push_back(k);
  impl_->read_yaml(map, where, valid);
}

YAML::Node MixerConfig::to_yaml() const { return model().to_yaml(); }

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

bool is_mixer(const std::string& name) { return registry().count(name) > 0; }

void check_mixer_config(const std::string& name, const MixerConfig& config, const std::string& where) {
  const MixerSpec& spec = mixer_spec(name);
  const std::string at = where.empty() ? name : where;
  LNX_CHECK(config.same_type(spec.defaults), ValueError, "[{}] the options are {}, not {} ({}'s)", at,
            config.type_name(), spec.defaults.type_name(), name);
  config.check_bounds(at);
}

std::unique_ptr<Mixer> make_mixer(const std::string& name, const MixerConfig& config, const ModelDims& dims,
                                  Generator& gen) {
  const MixerSpec& spec = mixer_spec(name);
  check_mixer_config(name, config);
  return spec.make(config, dims, gen);
}

MixerConfig preset_mixer_options(const std::string& name, int64_t d_model, PresetScale scale) {
  const MixerSpec& spec = mixer_spec(name);
  if (!spec.preset_options) return spec.defaults;
  MixerConfig c = spec.preset_options(d_model, scale);
  check_mixer_config(name, c);
  return c;
}

}  // namespace lnx::modules
