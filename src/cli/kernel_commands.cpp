// `linearnexus list` prints the mechanism registry; `linearnexus op` runs one mechanism in one
// form on tensors read from a safetensors file and writes its outputs (and, given upstream
// gradients, the input gradients) to another — for cross-checking against other frameworks.
#include <fmt/core.h>

#include <map>
#include <memory>

#include "cli/commands.h"
#include "core/config.h"
#include "io/safetensors.h"
#include "kernels/mechanism.h"

namespace lnx::cli {

void print_mechanisms() {
  for (const auto& name : kernels::mechanism_names()) {
    const kernels::Mechanism& m = kernels::mechanism(name);
    std::vector<std::string> forms;
    for (const auto& [form, fn] : m.forms) forms.push_back(kernels::form_name(form));
    fmt::print("{}\n  {}\n  forms:   {}\n", m.name, m.description, fmt::join(forms, ", "));
    for (const auto& in : m.inputs)
      fmt::print("  {:<14} {:<12} {}{}\n", in.name, in.shape(), in.required ? "" : "(optional) ", in.description);
    fmt::print("  options: scale, chunk_size, cu_seqlens (every mechanism)\n");
    for (const auto& f : m.options.fields)
      fmt::print("  --{:<12} {} = {}: {}\n", f.name, f.type, f.default_value, f.help);
    fmt::print("\n");
  }
}

namespace {

struct OpOptions {
  std::string mechanism, form = "chunk", input, output;
  double scale = 0;
  bool has_scale = false;
  int64_t chunk_size = 64;
  bool no_final_state = false;
  std::map<std::string, std::string> own;  // the mechanism's own options as given (text)
};

// Every option any registered mechanism declares, by name (the CLI offers the union; the
// chosen mechanism's declaration checks the ones given).
std::map<std::string, core::FieldInfo> declared_options() {
  std::map<std::string, core::FieldInfo> all;
  for (const auto& name : kernels::mechanism_names())
    for (const auto& f : kernels::mechanism(name).options.fields) all.emplace(f.name, f);
  return all;
}

// The given options as typed values, read as the mechanism declares them.
core::FieldValues own_options(const kernels::Mechanism& m, const std::map<std::string, std::string>& given) {
  core::FieldValues values;
  for (const auto& [key, text] : given) {
    const core::FieldInfo* info = nullptr;
    for (const auto& f : m.options.fields)
      if (f.name == key) info = &f;
    LNX_CHECK(info, ValueError, "[op] {} has no option '{}'{}", m.name, key, [&] {
      std::vector<std::string> names;
      for (const auto& f : m.options.fields) names.push_back(f.name);
      return names.empty() ? std::string("; it takes none") : fmt::format("; options: {}", fmt::join(names, ", "));
    }());
    values[key] = core::field_value_from_text(*info, text, "op --" + key);
  }
  return values;
}

// Upstream gradients in the input file; everything else is a mechanism input.
constexpr const char* kGradO = "do";
constexpr const char* kGradFinal = "dfinal_state";
constexpr const char* kCuSeqlens = "cu_seqlens";

int run_op(const OpOptions& o) {
  const kernels::Form form = kernels::parse_form(o.form);
  // Unknown names and options fail before any file is read.
  kernels::MechanismOptions opt;
  opt.own = own_options(kernels::mechanism(o.mechanism), o.own);
  SafetensorsFile file = load_safetensors(o.input);
  if (o.has_scale) opt.scale = o.scale;
  opt.chunk_size = o.chunk_size;
  opt.output_final_state = !o.no_final_state;

  TensorDict inputs;
  Tensor d_o, d_final;
  for (const auto& [name, t] : file.tensors) {
    if (name == kGradO)
      d_o = t;
    else if (name == kGradFinal)
      d_final = t;
    else if (name == kCuSeqlens)
      opt.cu_seqlens = t;
    else
      inputs.insert(name, is_floating(t.dtype()) ? t.detach().clone() : t);
  }
  const bool backward = d_o.defined() || d_final.defined();
  if (backward)
    for (const auto& [name, t] : inputs)
      if (is_floating(t.dtype())) t.set_requires_grad();

  kernels::MechanismOutputs out = kernels::run(o.mechanism, form, inputs, opt);
  TensorDict result;
  result.insert("o", out.o.detach());
  if (out.final_state.defined()) result.insert("final_state", out.final_state.detach());
  for (const auto& [name, t] : out.extra_state) result.insert(name, t.detach().contiguous());
  if (backward) {
    Tensor loss;
    auto add_term = [&](const Tensor& y, const Tensor& dy, const std::string& what, const std::string& of) {
      LNX_CHECK(y.defined(), ValueError, "[op] {} was given but the run has no {}{}", what, of,
                of == "final_state" ? " (drop --no-final-state)" : "");
      LNX_CHECK(dy.shape() == y.shape(), ShapeError, "[op] {} is {} but {} is {}", what, shape_str(dy.shape()), of,
                shape_str(y.shape()));
      Tensor term = sum(mul(y, dy.to(y.dtype())));
      loss = loss.defined() ? add(loss, term) : term;
    };
    if (d_o.defined()) add_term(out.o, d_o, kGradO, "o");
    if (d_final.defined()) add_term(out.final_state, d_final, kGradFinal, "final_state");
    loss.backward();
    for (const auto& [name, t] : inputs)
      if (is_floating(t.dtype())) result.insert("d" + name, t.grad().defined() ? t.grad() : zeros_like(t));
  }
  save_safetensors(o.output, result, {{"mechanism", o.mechanism}, {"form", o.form}});
  fmt::print("{} {}: wrote {} tensors to {}\n", o.mechanism, o.form, result.size(), o.output);
  return 0;
}

}  // namespace

void add_op_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<OpOptions>();
  auto* op = app.add_subcommand("op",
                                "Run one mechanism on tensors from a safetensors file (q, k, v, …, optional "
                                "initial_state, cu_seqlens, and upstream gradients do, dfinal_state) and write o, "
                                "final_state and the input gradients (d<name>) to a safetensors file");
  op->add_option("mechanism", o->mechanism, "mechanism name (see `linearnexus list`)")->required();
  op->add_option("--form", o->form, "reference | recurrent | chunk")->capture_default_str();
  op->add_option("--input,-i", o->input, "input safetensors file")->required();
  op->add_option("--output,-o", o->output, "output safetensors file")->required();
  op->add_option("--scale", o->scale, "query scale (default K^-1/2)")->each([o](const std::string&) {
    o->has_scale = true;
  });
  op->add_option("--chunk-size", o->chunk_size, "chunk size of the chunk form")->capture_default_str();
  op->add_flag("--no-final-state", o->no_final_state, "do not return the final state");
  // The mechanisms' own options, from their declarations: --name value (a bool: --name alone
  // means true), or --option name=value.
  for (const auto& [name, info] : declared_options()) {
    std::string flag = "--" + name;
    for (char& ch : flag)
      if (ch == '_') ch = '-';
    const std::string help = fmt::format("{} ({}, default {})", info.help, info.type, info.default_value);
    if (info.type == "bool")
      op->add_flag_function(
          flag, [o, name = name](int64_t) { o->own[name] = "true"; }, help);
    else
      op->add_option_function<std::string>(
          flag, [o, name = name](const std::string& v) { o->own[name] = v; }, help);
  }
  op->add_option_function<std::vector<std::string>>(
      "--option",
      [o](const std::vector<std::string>& items) {
        for (const auto& item : items) {
          const auto eq = item.find('=');
          LNX_CHECK(eq != std::string::npos && eq > 0, ValueError, "[op] --option {}: expected name=value", item);
          o->own[item.substr(0, eq)] = item.substr(eq + 1);
        }
      },
      "a mechanism option as name=value (repeatable; see `linearnexus list mechanisms`)");
  op->callback([o, &action] { action = [o] { return run_op(*o); }; });
}

}  // namespace lnx::cli
