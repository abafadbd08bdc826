// The block protocol every token mixer implements, the mixer configuration and the mixer
// registry. Dimension letters: B batch, T time, D model width, N sequences.
//
//   forward(x [B, T, D], state, cu_seqlens, mode) → (y [B, T, D], new state)
//
// A mixer reads its state (LayerState: recurrent state, conv caches, KV cache; empty = fresh
// sequences) and returns the state after the call's tokens. With cu_seqlens (B = 1) the
// sequences are packed along T; a padded batch with a mask goes through forward_masked, which
// packs it. Mode::automatic picks the recurrent kernel form for short inputs and the chunk
// form otherwise (core/mode.h); either form gives the same result.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "core/config.h"
#include "core/fields.h"
#include "core/mode.h"
#include "core/state.h"
#include "kernels/mechanism.h"
#include "modules/module.h"

namespace lnx::modules {

// ---- mixer configs ----
//
// Each mixer declares its options once, as a typed struct next to the mixer (e.g.
// AttentionConfig in attention/attention.h): its fields with their defaults as member values,
// and a visit method listing them with help and bounds (core/fields.h):
//
//   struct AttentionConfig {
//     int64_t window = 0;
//     template <class V> void visit(V&& v) {
//       v("window", window, "sliding attention window (0 = unlimited)", core::Bounds{0, 1e12});
//     }
//   };
//
// MixerConfig holds one such struct, whichever mixer's it is, so that the model config, YAML,
// `linearnexus list`/`info` and validation work with the mixer's own declaration; the mixer's
// factory reads it typed (as<AttentionConfig>()). Rules that are not bounds (a divisor, a
// power of two) are the mixer's and checked when it is built.
class MixerConfig {
 public:
  MixerConfig() = default;  // holds nothing (empty())
  // Any typed mixer config (a struct with a visit method as above).
  template <class C>
  requires(!std::is_same_v<std::decay_t<C>, MixerConfig>) MixerConfig(C config)
      : impl_(std::make_unique<Impl<std::decay_t<C>>>(std::move(config))) {}
  MixerConfig(const MixerConfig& o) : impl_(o.impl_ ? o.impl_->clone() : nullptr) {}
  MixerConfig& operator=(const MixerConfig& o) {
    impl_ = o.impl_ ? o.impl_->clone() : nullptr;
    return *this;
  }
  MixerConfig(MixerConfig&&) noexcept = default;
  MixerConfig& operator=(MixerConfig&&) noexcept = default;

  bool empty() const { return !impl_; }
  // The name of the struct it holds ("AttentionConfig"), for messages.
  std::string type_name() const;
  bool same_type(const MixerConfig& other) const;
  template <class C> bool holds() const { return impl_ && impl_->type() == typeid(C); }
  // The typed config (ValueError naming both types when it holds another one).
  template <class C> const C& as() const {
    check_holds(typeid(C));
    return static_cast<const Impl<C>&>(*impl_).value;
  }
  template <class C> C& as() {
    check_holds(typeid(C));
    return static_cast<Impl<C>&>(*impl_).value;
  }

  // Its fields (name, type, value as text, help, bounds), in declaration order.
  std::vector<core::FieldInfo> fields() const;
  std::vector<std::string> keys() const;
  bool has(const std::string& key) const;
  // A field's value (ValueError for an unknown key, listing the keys).
  core::FieldValue get(const std::string& key) const;
  // Sets a field by name: bool, an integer, a real or a string, as the field's type requires
  // (an integer may set a real field). ValueError for an unknown key (listing the keys) or a
  // value of another type. Bounds are checked by check_bounds (make_mixer checks them).
  template <class T> void set(const std::string& key, const T& value) {
    if constexpr (std::is_same_v<T, core::FieldValue>)
      set_value(key, value);
    else if constexpr (std::is_same_v<T, bool>)
      set_value(key, core::FieldValue(value));
    else if constexpr (std::is_integral_v<T>)
      set_value(key, core::FieldValue(static_cast<int64_t>(value)));
    else if constexpr (std::is_floating_point_v<T>)
      set_value(key, core::FieldValue(static_cast<double>(value)));
    else
      set_value(key, core::FieldValue(std::string(value)));
  }
  // ValueError "[where] window = -1: expected 0 … 1e12" for a field outside its bounds.
  void check_bounds(const std::string& where) const;

  // Reads the keys present in a YAML map into the fields (strictly, core::read_config): valid
  // keys are the fields and extra_keys, which the caller reads itself (e.g. a layer's `mixer`).
  void read_yaml(const YAML::Node& map, const std::string& where, const std::vector<std::string>& extra_keys = {});
  // Every field, in declaration order.
  YAML::Node to_yaml() const;

 private:
  template <class T> static constexpr bool is_scalar = std::is_same_v<T, bool> || std::is_same_v<T, int64_t> ||
                                                       std::is_same_v<T, double> || std::is_same_v<T, std::string>;
  struct Model {
    virtual ~Model() = default;
    virtual std::unique_ptr<Model> clone() const = 0;
    virtual const std::type_info& type() const = 0;
    virtual std::vector<core::FieldInfo> fields() const = 0;
    virtual core::FieldValue get(const std::string& key) const = 0;               // key is a scalar field
    virtual bool set(const std::string& key, const core::FieldValue& value) = 0;  // false: wrong type
    virtual void check_bounds(const std::string& where) const = 0;
    virtual void read_yaml(const YAML::Node& map, const std::string& where, const std::vector<std::string>& valid) = 0;
    virtual YAML::Node to_yaml() const = 0;
  };
  template <class C> struct Impl final : Model {
    C value;
    explicit Impl(C v) : value(std::move(v)) {}
    std::unique_ptr<Model> clone() const override { return std::make_unique<Impl>(value); }
    const std::type_info& type() const override { return typeid(C); }
    std::vector<core::FieldInfo> fields() const override { return core::describe_fields(value); }
    core::FieldValue get(const std::string& key) const override {
      C copy = value;  // visit is not const
      core::FieldValue out;
      copy.visit([&](const char* name, auto& field, const char*, const auto&...) {
        if constexpr (is_scalar<std::decay_t<decltype(field)>>)
          if (key == name) out = field;
      });
      return out;
    }
    bool set(const std::string& key, const core::FieldValue& v) override {
      bool ok = true;
      value.visit([&](const char* name, auto& field, const char*, const auto&...) {
        if (key != name) return;
        if constexpr (is_scalar<std::decay_t<decltype(field)>>)
          ok = core::fields_detail::assign(field, v);
        else
          ok = false;
      });
      return ok;
    }
    void check_bounds(const std::string& where) const override { core::check_bounds(value, where); }
    void read_yaml(const YAML::Node& map, const std::string& where, const std::vector<std::string>& valid) override {
      core::read_config(map, value, where, &valid);
    }
    YAML::Node to_yaml() const override { return core::write_config(value); }
  };
  void check_holds(const std::type_info& t) const;
  void set_value(const std::string& key, const core::FieldValue& value);
  const Model& model() const;  // ValueError when empty
  std::unique_ptr<Model> impl_;
};

// Bounds the built-in mixers' fields share (configs come from files: every size is bounded and
// every real finite before a width is computed from it). A mixer may use its own.
namespace mixer_bounds {
inline constexpr core::Bounds heads{0, 1 << 14};  // num_heads, num_kv_heads, n_groups
inline constexpr core::Bounds dim{0, 1 << 16};    // head_dim, state_size, ranks
inline constexpr core::Bounds ratio{0, 64};       // expand, expand_k, expand_v
inline constexpr core::Bounds conv{0, 1 << 10};   // conv_size
inline constexpr core::Bounds chunk{0, 1 << 16};  // chunk_size (a power of two: the mixer checks)
inline constexpr core::Bounds rope_theta{0, 1e12};
}  // namespace mixer_bounds

// The presets' scales (models/presets.h): tiny (tests, heads of 32 dims) and small (heads of 64).
enum class PresetScale { tiny, small };
// Head dim of the presets at a scale (32 / 64), and heads of that dim in width d (at least 1).
inline int64_t preset_head_dim(PresetScale s) { return s == PresetScale::small ? 64 : 32; }
inline int64_t preset_num_heads(int64_t d_model, PresetScale s) {
  return std::max<int64_t>(1, d_model / preset_head_dim(s));
}

// What a mixer knows of the model around it.
struct ModelDims {
  int64_t d_model = 0;
  double norm_eps = 1e-6;
  bool zero_centered_norm = false;  // RMSNorm weights applied as 1 + w (modules/norm.h)
  int64_t layer_idx = 0, n_layer = 1;
  double init_std = 0.02;
};

struct MixerInput {
  Tensor x;                                 // [B, T, D]
  const core::LayerState* state = nullptr;  // null or empty: fresh sequences
  Tensor cu_seqlens;                        // [N + 1] when packed (B = 1)
  std::vector<int64_t> seen;                // [N] tokens each sequence has seen (RoPE); empty = 0
  core::Mode mode = core::Mode::automatic;
};

struct MixerOutput {
  Tensor y;                // [B, T, D]
  core::LayerState state;  // after the call's tokens
};

class Mixer : public Module {
 public:
  virtual MixerOutput forward(const MixerInput& in) const = 0;
  // Forward FLOPs per token at the given context length (projections: 2 per weight; the
  // kernel: its state update and read, or attention's context).
  virtual double flops_per_token(int64_t context) const = 0;
  // Sequence n's state alone (N = 1), as a call on that sequence by itself would return it.
  // By default row n of every state tensor; a mixer with ragged state (attention's KV cache,
  // right-padded to the longest sequence) trims it.
  virtual core::LayerState select_sequence(const core::LayerState& state, int64_t n) const;
};

// A padded batch x [B, T, D] with mask [B, T] (1 = real token): packs the real tokens, runs
// the mixer on them as sequences, and unpacks (zeros at padding). seen: tokens each row has
// seen before (positions for RoPE), as in MixerInput.
MixerOutput forward_masked(const Mixer& mixer, const Tensor& x, const Tensor& mask, const core::LayerState* state,
                           core::Mode mode, std::vector<int64_t> seen = {});

// Sequences and their longest length in a call (N = B without cu_seqlens).
struct CallShape {
  int64_t N = 0, max_len = 0;
};
CallShape call_shape(const MixerInput& in);
// The kernel form for this call (recurrent or chunk).
core::Mode call_mode(const MixerInput& in);

// ---- helpers shared by the mixers ----

// A mixer's kernel call: the form from call_mode(in), chunk_size, in.cu_seqlens, the incoming
// "recurrent" state as initial_state; the final state goes to state_out["recurrent"].
// options may carry mechanism flags (use_qk_l2norm, window, …). Returns o [B, T, H, V].
Tensor run_state_kernel(const std::string& kernel, TensorDict inputs, const MixerInput& in, int64_t chunk_size,
                        core::LayerState& state_out, kernels::MechanismOptions options = {});

// Tokens each of the call's N sequences has seen before it (RoPE positions): in.seen when
// given, else the state's "positions" entry, else 0. Records the positions after the call as
// state_out["positions"] [N] i64, so a state alone resumes at the right position.
std::vector<int64_t> sequence_positions(const MixerInput& in, core::LayerState& state_out);

// chunk_size must be a power of two (ValueError naming the mixer otherwise).
void check_chunk_size(const std::string& mixer, int64_t chunk_size);

// ---- registry ----
struct MixerSpec {
  std::string name;
  std::string description;  // one line: the paper and the layer recipe
  std::string kernel;       // the mechanism it runs (kernels registry), for `list` and the docs
  MixerConfig defaults;     // its typed config, default values
  // Its paper's block has a SwiGLU MLP after the mixer (Mamba's and Mamba-2's do not): the
  // default of a layer's `mlp` (models/config.h).
  bool block_mlp = true;
  // Its options in a preset model of width d_model at a scale (models/presets.h); null = the
  // defaults.
  std::function<MixerConfig(int64_t d_model, PresetScale scale)> preset_options;
  // Builds the mixer from a config holding its typed config (make_mixer checks the type and
  // the bounds first).
  std::function<std::unique_ptr<Mixer>(const MixerConfig&, const ModelDims&, Generator&)> make;
};

void register_mixer(MixerSpec spec);
const MixerSpec& mixer_spec(const std::string& name);  // ValueError listing the names
std::vector<std::string> mixer_names();
bool is_mixer(const std::string& name);
// Checks the config (check_mixer_config), then builds the mixer.
std::unique_ptr<Mixer> make_mixer(const std::string& name, const MixerConfig& config, const ModelDims& dims,
                                  Generator& gen);
// The config holds the mixer's typed config and its fields lie within their bounds; ValueError
// naming `where` (default: the mixer) and the key otherwise.
void check_mixer_config(const std::string& name, const MixerConfig& config, const std::string& where = "");
// The mixer's options in a preset model (spec.preset_options, or its defaults).
MixerConfig preset_mixer_options(const std::string& name, int64_t d_model, PresetScale scale);

}  // namespace lnx::modules
