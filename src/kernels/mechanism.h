// Token-mixing mechanisms and their registry (docs/architecture.md, "kernels").
//
// Dimension letters: B batch, T time, H heads, K key dim, V value dim, N sequences (B, or the
// number of packed sequences when cu_seqlens is given, then B = 1), S chunk size.
//
// Every mechanism has three forms with one signature: inputs by name (q, k, v, g, beta,
// initial_state, …), options, and outputs o [B, T, H, V] and final_state [N, H, K, V].
//   reference — token-by-token recurrence built from tensor ops; run in f64 it is the
//               definition of the mechanism; gradients by autodiff.
//   recurrent — fused token loop with a hand-written vjp (decoding, short inputs).
//   chunk     — chunked parallel form with a hand-written vjp (training, prefill).
// All inputs, initial_state included, receive gradients; final_state can be differentiated.
//
// A mechanism declares itself once (Mechanism below): its inputs as symbolic shapes, its own
// options as a typed struct, and its forms. `run` validates a call against that declaration
// (names, shapes, dtypes, cu_seqlens, options, chunk size) before any form sees it, so a form
// receives a checked Call. Fused forms are Primitives (primitive.h): one driver records their
// autodiff node, keeps what backward needs and dispatches by device.
#pragma once

#include <any>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/fields.h"
#include "kernels/common/layout.h"
#include "tensor/ops.h"

namespace lnx::kernels {

enum class Form { reference, recurrent, chunk };
const char* form_name(Form form);
Form parse_form(const std::string& name);  // ValueError listing the forms
inline const Form kAllForms[] = {Form::reference, Form::recurrent, Form::chunk};

// Options every call takes; a mechanism's own options go in `own` by name (see Mechanism::options).
struct MechanismOptions {
  std::optional<double> scale;  // default: the mechanism's (K^-1/2 unless it says otherwise)
  int64_t chunk_size = 64;      // chunk form: a power of two
  bool output_final_state = true;
  Tensor cu_seqlens;      // [N+1] i32/i64 offsets of packed sequences; needs B = 1
  core::FieldValues own;  // the mechanism's own options, checked against its declaration

  MechanismOptions& set(const std::string& name, core::FieldValue value) {
    own[name] = std::move(value);
    return *this;
  }
  // Every field of a typed options struct (e.g. DeltaRuleOptions) into own.
  template <class O> MechanismOptions& set_all(const O& options) {
    O copy = options;
    copy.visit([&](const char* name, auto& field, const char*, const auto&...) {
      using F = std::decay_t<decltype(field)>;
      if constexpr (std::is_constructible_v<core::FieldValue, F>) own[name] = core::FieldValue(field);
    });
    return *this;
  }
};

struct MechanismOutputs {
  Tensor o;            // [B, T, H, V]
  Tensor final_state;  // [N, H, K, V]; undefined unless output_final_state
  // A state that is not [N, H, K, V] (softmax_attention's KV cache: "k_cache", "v_cache"),
  // named as the inputs that resume from it; empty unless output_final_state.
  TensorDict extra_state;
};

// One input: its name (as in safetensors files and the CLI) and its shape in symbolic sizes.
// A size letter is bound by the first input that has it (in declaration order) and checked
// against every later one; N is bound by the layout (B, or the packed sequences).
// Every input is floating (the dtype of the first one), and differentiable.
struct InputSpec {
  std::string name;               // "q", "g", "initial_state", …
  std::vector<std::string> dims;  // e.g. {"B", "T", "H", "K"}
  bool required = true;
  std::string description;

  static InputSpec required_input(std::string name, std::vector<std::string> dims, std::string description) {
    return {std::move(name), std::move(dims), true, std::move(description)};
  }
  static InputSpec optional_input(std::string name, std::vector<std::string> dims, std::string description) {
    return {std::move(name), std::move(dims), false, std::move(description)};
  }
  std::string shape() const;  // "[B,T,H,K]"
};

// A mechanism's own options: the fields of its typed options struct, and how to turn named
// values into that struct (as std::any; forms read it back with Call::options<O>()).
struct OptionsSchema {
  std::vector<core::FieldInfo> fields;
  std::function<std::any(const core::FieldValues& values, const std::string& where)> decode;
};

// For mechanisms without options of their own.
struct NoOptions {
  template <class V> void visit(V&&) {}
};

template <class O> OptionsSchema options_schema() {
  OptionsSchema s;
  s.fields = core::describe_fields(O{});
  s.decode = [](const core::FieldValues& values, const std::string& where) {
    O o;
    core::assign_fields(o, values, where);
    return std::any(o);
  };
  return s;
}

// Sizes of a test or benchmark problem; mechanisms make their own random inputs from them.
struct ProblemSize {
  int64_t B = 1, T = 1, H = 1, K = 1, V = 1;
};

// A call after validation: what a form runs on.
struct Call {
  std::string op;  // "<mechanism>_<form>": names the call in messages and nodes
  Form form = Form::reference;
  TensorDict inputs;                     // as given, with their autodiff history
  SequenceLayout layout;                 // B, T, H, K, V, N and the sequences' row offsets
  std::map<std::string, int64_t> sizes;  // every bound size letter (H, K, V, HK, Tc, …)
  DType dtype = DType::f32;              // of the floating inputs
  double scale = 1.0;                    // options.scale or the mechanism's default
  MechanismOptions options;              // as given (own: the named values)
  std::any own;                          // the decoded options struct

  bool has(const std::string& name) const { return inputs.contains(name); }
  // The input, or an undefined tensor for an optional input that was not given.
  Tensor operator[](const std::string& name) const { return has(name) ? inputs.at(name) : Tensor(); }
  template <class O> const O& options_as() const { return std::any_cast<const O&>(own); }
  // The options to hand to another mechanism or primitive: these, with the resolved scale.
  MechanismOptions forward_options() const {
    MechanismOptions o = options;
    o.scale = scale;
    o.own.clear();
    return o;
  }
};

using FormFn = std::function<MechanismOutputs(const Call& call)>;

enum class DefaultScale { inverse_sqrt_key_dim, one };

struct Mechanism {
  std::string name;
  std::string description;  // one line: what it is
  std::string equation;     // the recurrence per head, plain text
  std::vector<InputSpec> inputs;
  OptionsSchema options = options_schema<NoOptions>();
  std::map<Form, FormFn> forms;
  DefaultScale default_scale = DefaultScale::inverse_sqrt_key_dim;
  // false for mechanisms without an [N,H,K,V] state (softmax_attention): they take no
  // initial_state, return no final_state, and resume from their extra_state instead.
  bool has_recurrent_state = true;
  // The inputs that play the key [B,T,H,K] and value [B,T,H,V] roles (tests give them wrong
  // shapes and dtypes to check the errors); mamba2, for one, calls them B and x.
  std::string key_input = "k", value_input = "v";
  // Random inputs (without initial_state) of the given sizes and dtype, with gates drawn
  // over the range the numerics policy asks for (logsigmoid(x)/n, n from 0.1 to 10).
  std::function<TensorDict(const ProblemSize& size, Generator& gen, DType dtype)> make_inputs;
  // Useful FLOPs of one forward pass of the given form (for benchmarks), or nullptr.
  std::function<double(const ProblemSize& size, Form form, int64_t chunk_size)> flops;
};

// The registry. Built-in mechanisms are registered on first use (builtin.h lists them);
// register_mechanism adds one more (a test's toy, a user's own).
void register_mechanism(Mechanism m);
const Mechanism& mechanism(const std::string& name);  // ValueError listing the names
std::vector<std::string> mechanism_names();

// Runs one form of one mechanism after checking the call against its declaration.
MechanismOutputs run(const std::string& name, Form form, const TensorDict& inputs,
                     const MechanismOptions& options = {});

// Validates inputs and options against specs (messages name op) and returns the Call. Used by
// run, and by fused primitives whose inputs differ from their mechanism's.
Call make_call(const std::string& op, Form form, const std::vector<InputSpec>& specs, const TensorDict& inputs,
               const MechanismOptions& options, DefaultScale default_scale = DefaultScale::inverse_sqrt_key_dim,
               const OptionsSchema* schema = nullptr);

}  // namespace lnx::kernels
