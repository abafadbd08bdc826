// linearnexus._core's mechanism functions: the registry as JSON, one call of any mechanism and
// form, and the call's backward, which the PyTorch bridge (linearnexus/ops.py) wraps in a
// torch.autograd.Function. Python generates linearnexus.ops.<mechanism> from the registry, so
// a newly registered mechanism needs no code here.
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <optional>

#include "arrays.h"
#include "bindings.h"
#include "kernels/describe.h"
#include "kernels/mechanism.h"
#include "tensor/autograd.h"

namespace lnx::python {

namespace {

// Python option values as the registry's typed values (bool before int: True is an int too).
core::FieldValues option_values(const nb::dict& options, const std::string& op) {
  core::FieldValues values;
  for (auto [key, value] : options) {
    const std::string name = nb::cast<std::string>(key);
    if (nb::isinstance<nb::bool_>(value))
      values[name] = nb::cast<bool>(value);
    else if (nb::isinstance<nb::int_>(value))
      values[name] = nb::cast<int64_t>(value);
    else if (nb::isinstance<nb::float_>(value))
      values[name] = nb::cast<double>(value);
    else if (nb::isinstance<nb::str>(value))
      values[name] = nb::cast<std::string>(value);
    else
      throw ValueError(fmt::format("[{}] option {} is a {}: expected bool, int, float or str", op, name,
                                   nb::type_name(value.type()).c_str()));
  }
  return values;
}

// One call of a mechanism, kept when gradients are wanted: its inputs as autodiff leaves and
// its outputs, so that backward can run once the upstream gradients are known.
class MechanismCall {
 public:
  MechanismCall(std::string op, TensorDict inputs, kernels::MechanismOutputs outputs)
      : op_(std::move(op)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {}

  // Gradients of every floating input given those of o, final_state and the extra state
  // (each may be None: no gradient flows from it). It may run again with other gradients
  // (torch.autograd.gradcheck does, row by row): the graph is kept until the call is freed.
  nb::dict backward(std::optional<AnyArray> d_o, std::optional<AnyArray> d_final_state, const nb::dict& d_extra) {
    TensorList ys, dys;
    auto add = [&](const Tensor& y, const std::optional<AnyArray>& dy, const std::string& what) {
      if (!dy) return;
      LNX_CHECK(y.defined(), ValueError, "[{}] a gradient for {} was given but the call returned no {}", op_, what,
                what);
      Tensor g = tensor_from_array(*dy, "the gradient of " + what, op_);
      LNX_CHECK(g.shape() == y.shape(), ShapeError, "[{}] the gradient of {} is {} but {} is {}", op_, what,
                shape_str(g.shape()), what, shape_str(y.shape()));
      LNX_CHECK(g.dtype() == y.dtype(), DTypeError, "[{}] the gradient of {} is {} but {} is {}", op_, what,
                numpy_dtype_name(g.dtype()), what, numpy_dtype_name(y.dtype()));
      ys.push_back(y);
      dys.push_back(g);
    };
    add(outputs_.o, d_o, "o");
    add(outputs_.final_state, d_final_state, "final_state");
    for (auto [key, value] : d_extra) {
      const std::string name = nb::cast<std::string>(key);
      LNX_CHECK(outputs_.extra_state.contains(name), ValueError,
                "[{}] a gradient for {} was given but the call has no {}", op_, name, name);
      if (!value.is_none())
        add(outputs_.extra_state.at(name), array_argument(value, "the gradient of " + name, op_), name);
    }
    for (const auto& [name, x] : inputs_)
      if (is_floating(x.dtype())) x.zero_grad();
    if (!ys.empty()) {
      nb::gil_scoped_release release;
      lnx::backward(ys, dys, /*retain_graph=*/true);
    }
    nb::dict grads;
    for (const auto& [name, x] : inputs_) {
      if (!is_floating(x.dtype())) continue;
      grads[name.c_str()] = array_from_tensor(x.grad().defined() ? x.grad() : zeros_like(x));
    }
    return grads;
  }

 private:
  std::string op_;
  TensorDict inputs_;
  kernels::MechanismOutputs outputs_;
};

struct RunArguments {
  std::string name, form;
  nb::dict inputs;
  std::optional<AnyArray> cu_seqlens;
  std::optional<double> scale;
  int64_t chunk_size = 64;
  bool output_final_state = true;
  nb::dict options;
};

// Validated inputs and options of one call (the registry checks names, shapes and values).
std::pair<TensorDict, kernels::MechanismOptions> prepare(const RunArguments& a, const std::string& op, bool record) {
  TensorDict inputs;
  for (auto [key, value] : a.inputs) {
    const std::string name = nb::cast<std::string>(key);
    if (value.is_none()) continue;
    Tensor t = tensor_from_array(array_argument(value, name, op), name, op);
    LNX_CHECK(is_floating(t.dtype()), DTypeError, "[{}] {} is {}: expected float32 or float64", op, name,
              numpy_dtype_name(t.dtype()));
    if (record) t.set_requires_grad();
    inputs.insert(name, t);
  }
  kernels::MechanismOptions options;
  options.scale = a.scale;
  options.chunk_size = a.chunk_size;
  options.output_final_state = a.output_final_state;
  if (a.cu_seqlens) options.cu_seqlens = tensor_from_array(*a.cu_seqlens, "cu_seqlens", op);
  options.own = option_values(a.options, op);
  return {std::move(inputs), std::move(options)};
}

// (o, final_state or None, extra_state dict, MechanismCall or None)
nb::tuple run_mechanism(const RunArguments& a, bool record) {
  const kernels::Form form = kernels::parse_form(a.form);
  const std::string op = "linearnexus.ops." + a.name;
  kernels::mechanism(a.name);  // an unknown name fails first, with the list of names
  auto [inputs, options] = prepare(a, op, record);
  kernels::MechanismOutputs out;
  {
    nb::gil_scoped_release release;
    std::optional<NoGradGuard> no_grad;
    if (!record) no_grad.emplace();
    out = kernels::run(a.name, form, inputs, options);
  }
  // An output may be a view of an input (softmax_attention's KV cache is k and v when it starts
  // empty); a writable array over the caller's, possibly read-only, memory would alias it.
  auto result = [&](const Tensor& t) {
    for (const auto& [name, x] : inputs)
      if (t.shares_storage(x)) return array_from_tensor(t.detach().clone());
    return array_from_tensor(t);
  };
  nb::dict extra;
  for (const auto& [name, t] : out.extra_state) extra[name.c_str()] = result(t);
  nb::object o = result(out.o);
  nb::object final_state = out.final_state.defined() ? result(out.final_state) : nb::none();
  nb::object call =
      record ? nb::cast(new MechanismCall(op, std::move(inputs), std::move(out)), nb::rv_policy::take_ownership)
             : nb::none();
  return nb::make_tuple(o, final_state, extra, call);
}

}  // namespace

void bind_ops(nb::module_& m) {
  nb::class_<MechanismCall>(m, "MechanismCall",
                            "One recorded mechanism call; backward(d_o, d_final_state, d_extra) returns the "
                            "inputs' gradients")
      .def("backward", &MechanismCall::backward, nb::arg("d_o").none(), nb::arg("d_final_state").none(),
           nb::arg("d_extra") = nb::dict());

  auto run = [](bool record) {
    return [record](std::string name, std::string form, nb::dict inputs, std::optional<AnyArray> cu_seqlens,
                    std::optional<double> scale, int64_t chunk_size, bool output_final_state, nb::dict options) {
      return run_mechanism({std::move(name), std::move(form), std::move(inputs), std::move(cu_seqlens), scale,
                            chunk_size, output_final_state, std::move(options)},
                           record);
    };
  };
  const auto args = std::make_tuple(nb::arg("name"), nb::arg("form"), nb::arg("inputs"), nb::arg("cu_seqlens").none(),
                                    nb::arg("scale").none(), nb::arg("chunk_size"), nb::arg("output_final_state"),
                                    nb::arg("options"));
  std::apply([&](auto... a) { m.def("run_mechanism", run(false), a..., "(o, final_state, extra_state, None)"); }, args);
  std::apply(
      [&](auto... a) {
        m.def("record_mechanism", run(true), a..., "(o, final_state, extra_state, MechanismCall) for backward");
      },
      args);

  m.def(
      "mechanisms_json", [] { return kernels::mechanisms_json().dump(); },
      "Every registered mechanism (name, forms, inputs, options, state) as JSON");

  m.def(
      "make_inputs",
      [](const std::string& name, int64_t B, int64_t T, int64_t H, int64_t K, int64_t V, uint64_t seed,
         const std::string& dtype) {
        LNX_CHECK(dtype == "float32" || dtype == "float64", ValueError,
                  "[make_inputs] dtype is '{}': expected float32 or float64", dtype);
        const auto& mech = kernels::mechanism(name);
        Generator gen(seed);
        TensorDict inputs = mech.make_inputs({B, T, H, K, V}, gen, dtype == "float32" ? DType::f32 : DType::f64);
        nb::dict out;
        for (const auto& [key, t] : inputs) out[key.c_str()] = array_from_tensor(t);
        return out;
      },
      nb::arg("name"), nb::arg("B"), nb::arg("T"), nb::arg("H"), nb::arg("K"), nb::arg("V"), nb::arg("seed") = 0,
      nb::arg("dtype") = "float64",
      "Random inputs of a mechanism for the given sizes, gates drawn as the numerics policy asks (tests)");

  // The C++ side of a call alone, to measure what the Python layer adds (bench/python_overhead.py).
  m.def(
      "time_mechanism",
      [](std::string name, std::string form, nb::dict inputs, int64_t chunk_size, int64_t repeats, bool record) {
        RunArguments a{
            std::move(name), std::move(form), std::move(inputs), std::nullopt, std::nullopt, chunk_size, true,
            nb::dict()};
        const std::string op = "linearnexus.ops." + a.name;
        auto [tensors, options] = prepare(a, op, record);
        const kernels::Form f = kernels::parse_form(a.form);
        nb::gil_scoped_release release;
        std::optional<NoGradGuard> no_grad;
        if (!record) no_grad.emplace();
        const auto t0 = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < repeats; ++i) kernels::run(a.name, f, tensors, options);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
               static_cast<double>(repeats);
      },
      nb::arg("name"), nb::arg("form"), nb::arg("inputs"), nb::arg("chunk_size") = 64, nb::arg("repeats") = 1000,
      nb::arg("record") = false,
      "Seconds per call of kernels::run on these inputs, timed in C++ (record: inputs that require gradients, "
      "the autodiff graph recorded and dropped each call)");
}

}  // namespace lnx::python
