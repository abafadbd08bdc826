// `linearnexus list` prints the mechanism registry; `linearnexus op` runs one mechanism in one
// form on tensors read from a safetensors file and writes its outputs (and, given upstream
// gradients, the input gradients) to another — for cross-checking against other frameworks.
#include <fmt/core.h>

#include <memory>

#include "cli/commands.h"
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
      fmt::print("  {:<14} {:<12} {}{}\n", in.name, in.shape, in.required ? "" : "(optional) ",
                 in.description);
    std::vector<std::string> options{"scale", "chunk_size", "cu_seqlens"};
    options.insert(options.end(), m.options.begin(), m.options.end());
    fmt::print("  options: {}\n\n", fmt::join(options, ", "));
  }
}

namespace {

struct OpOptions {
  std::string mechanism, form = "chunk", input, output;
  double scale = 0;
  bool has_scale = false;
  int64_t chunk_size = 64;
  int64_t window = 0;
  bool no_final_state = false, normalize = false, use_qk_l2norm = false;
};

// Upstream gradients in the input file; everything else is a mechanism input.
constexpr const char* kGradO = "do";
constexpr const char* kGradFinal = "dfinal_state";
constexpr const char* kCuSeqlens = "cu_seqlens";

int run_op(const OpOptions& o) {
  const kernels::Form form = kernels::parse_form(o.form);
  kernels::mechanism(o.mechanism);  // unknown names fail before any file is read
  SafetensorsFile file = load_safetensors(o.input);
  kernels::MechanismOptions opt;
  if (o.has_scale) opt.scale = o.scale;
  opt.chunk_size = o.chunk_size;
  opt.output_final_state = !o.no_final_state;
  opt.normalize = o.normalize;
  opt.use_qk_l2norm = o.use_qk_l2norm;
  opt.window = o.window;

  TensorDict inputs;
  Tensor d_o, d_final;
  for (const auto& [name, t] : file.tensors) {
    if (name == kGradO) d_o = t;
    else if (name == kGradFinal) d_final = t;
    else if (name == kCuSeqlens) opt.cu_seqlens = t;
    else inputs.insert(name, is_floating(t.dtype()) ? t.detach().clone() : t);
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
      LNX_CHECK(dy.shape() == y.shape(), ShapeError, "[op] {} is {} but {} is {}", what,
                shape_str(dy.shape()), of, shape_str(y.shape()));
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
  auto* op = app.add_subcommand(
      "op", "Run one mechanism on tensors from a safetensors file (q, k, v, …, optional "
            "initial_state, cu_seqlens, and upstream gradients do, dfinal_state) and write o, "
            "final_state and the input gradients (d<name>) to a safetensors file");
  op->add_option("mechanism", o->mechanism, "mechanism name (see `linearnexus list`)")->required();
  op->add_option("--form", o->form, "reference | recurrent | chunk")->capture_default_str();
  op->add_option("--input,-i", o->input, "input safetensors file")->required();
  op->add_option("--output,-o", o->output, "output safetensors file")->required();
  op->add_option("--scale", o->scale, "query scale (default K^-1/2)")
      ->each([o](const std::string&) { o->has_scale = true; });
  op->add_option("--chunk-size", o->chunk_size, "chunk size of the chunk form")->capture_default_str();
  op->add_flag("--no-final-state", o->no_final_state, "do not return the final state");
  op->add_flag("--normalize", o->normalize, "linear_attn: normalise by scale·q·Σk");
  op->add_flag("--use-qk-l2norm", o->use_qk_l2norm, "delta rules: L2-normalise q and k in the kernel");
  op->add_option("--window", o->window, "softmax_attention: sliding window (0 = unlimited)")
      ->capture_default_str();
  op->callback([o, &action] { action = [o] { return run_op(*o); }; });
}

}  // namespace lnx::cli
