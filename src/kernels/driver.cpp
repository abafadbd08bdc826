// The registry, call validation from the input specs, and the primitive driver.
#include <algorithm>
#include <mutex>

#include "kernels/builtin.h"
#include "kernels/primitive.h"
#include "tensor/autograd.h"
#include "tensor/cpu/parallel.h"
#include "tensor/profile.h"

namespace lnx::kernels {

constexpr int64_t kMaxChunkSize = 4096;

namespace {

std::map<std::string, Mechanism>& registry() {
  static std::map<std::string, Mechanism> r;
  static std::once_flag once;
  std::call_once(once, [] {
    for (Mechanism m : builtin_mechanisms()) {
      LNX_CHECK(!r.count(m.name), ValueError, "[registry] '{}' is listed twice", m.name);
      r.emplace(m.name, std::move(m));
    }
  });
  return r;
}

std::string shape_with_sizes(const InputSpec& spec, const std::map<std::string, int64_t>& sizes) {
  std::vector<std::string> parts;
  for (const auto& d : spec.dims) parts.push_back(sizes.count(d) ? std::to_string(sizes.at(d)) : d);
  return fmt::format("[{}]", fmt::join(parts, ","));
}

// Binds or checks every size letter of the inputs given, in declaration order; N only when
// with_n (after the layout has bound it).
void check_shapes(const std::string& op, const std::vector<InputSpec>& specs, const TensorDict& in,
                  std::map<std::string, int64_t>& sizes, std::map<std::string, std::string>& bound_by, bool with_n) {
  for (const auto& spec : specs) {
    if (!in.contains(spec.name)) continue;
    const Tensor& x = in.at(spec.name);
    LNX_CHECK(x.dim() == static_cast<int64_t>(spec.dims.size()), ShapeError, "[{}] {} is {}: expected {}", op,
              spec.name, shape_str(x.shape()), spec.shape());
    for (size_t a = 0; a < spec.dims.size(); ++a) {
      const std::string& d = spec.dims[a];
      if (d == "N" && !with_n) continue;
      auto it = sizes.find(d);
      if (it == sizes.end()) {
        // Batch, time and cache rows may be empty; heads and key/value features may not (no
        // problem to solve, and kernels would index empty rows).
        LNX_CHECK((d != "H" && d != "K" && d != "V") || x.size(static_cast<int64_t>(a)) >= 1, ShapeError,
                  "[{}] {} is {}: {} must be at least 1", op, spec.name, shape_str(x.shape()), d);
        sizes[d] = x.size(static_cast<int64_t>(a));
        bound_by[d] = spec.name;
        continue;
      }
      LNX_CHECK(it->second == x.size(static_cast<int64_t>(a)), ShapeError,
                "[{}] {} is {}: expected {} = {} ({} from {})", op, spec.name, shape_str(x.shape()), spec.shape(),
                shape_with_sizes(spec, sizes), d, bound_by.count(d) ? bound_by.at(d) : std::string("the sequences"));
    }
  }
}

void check_dtypes(const std::string& op, const std::vector<InputSpec>& specs, const TensorDict& in, DType& dtype) {
  const InputSpec* first = nullptr;
  for (const auto& spec : specs) {
    if (!in.contains(spec.name)) continue;
    const Tensor& x = in.at(spec.name);
    if (!first) {
      first = &spec;
      dtype = x.dtype();
      LNX_CHECK(is_floating(dtype), DTypeError, "[{}] {} is {}: expected f32 or f64", op, spec.name, dtype_name(dtype));
      continue;
    }
    LNX_CHECK(x.dtype() == dtype, DTypeError, "[{}] {} is {} but {} is {}: all inputs must have one dtype", op,
              first->name, dtype_name(dtype), spec.name, dtype_name(x.dtype()));
  }
}

// Offsets of the sequences: batch rows, or cu_seqlens (checked) with B = 1.
std::vector<int64_t> sequence_offsets(const std::string& op, int64_t B, int64_t T, const Tensor& cu) {
  std::vector<int64_t> off;
  if (!cu.defined()) {
    for (int64_t b = 0; b <= B; ++b) off.push_back(b * T);
    return off;
  }
  LNX_CHECK(cu.dtype() == DType::i32 || cu.dtype() == DType::i64, DTypeError,
            "[{}] cu_seqlens is {}: expected i32 or i64", op, dtype_name(cu.dtype()));
  LNX_CHECK(cu.dim() == 1 && cu.size(0) >= 2, ShapeError, "[{}] cu_seqlens is {}: expected [N+1] with N >= 1", op,
            shape_str(cu.shape()));
  LNX_CHECK(B == 1, ShapeError, "[{}] B = {}: packed sequences (cu_seqlens) need B = 1", op, B);
  off = cu.to_vector<int64_t>();
  LNX_CHECK(off.front() == 0, ValueError, "[{}] cu_seqlens starts at {}, expected 0", op, off.front());
  for (size_t n = 0; n + 1 < off.size(); ++n)
    LNX_CHECK(off[n + 1] >= off[n], ValueError, "[{}] cu_seqlens is not non-decreasing: entry {} is {} after {}", op,
              n + 1, off[n + 1], off[n]);
  LNX_CHECK(off.back() == T, ValueError, "[{}] cu_seqlens ends at {} but the inputs have T = {} tokens", op, off.back(),
            T);
  return off;
}

int64_t size_or(const std::map<std::string, int64_t>& sizes, const char* d, int64_t fallback) {
  auto it = sizes.find(d);
  return it == sizes.end() ? fallback : it->second;
}

TensorList differentiable_inputs(const Primitive& p, const TensorDict& in, std::vector<std::string>& names) {
  TensorList list;
  for (const auto& spec : p.inputs)
    if (in.contains(spec.name)) {
      list.push_back(in.at(spec.name));
      names.push_back(spec.name);
    }
  return list;
}

KernelArgs kernel_args(const Primitive& p, const Call& call) {
  KernelArgs a;
  a.op = p.name;
  a.L = call.layout;
  a.sizes = call.sizes;
  a.dtype = call.dtype;
  a.scale = call.scale;
  a.output_final_state = call.options.output_final_state;
  a.own = call.own;
  for (const auto& [name, t] : call.inputs) a.in.insert(name, t.detach().contiguous());
  if (p.chunked) a.plan = std::make_shared<const ChunkPlan>(ChunkPlan::make(a.L, call.options.chunk_size));
  return a;
}

}  // namespace

const char* form_name(Form form) {
  switch (form) {
    case Form::reference:
      return "reference";
    case Form::recurrent:
      return "recurrent";
    case Form::chunk:
      return "chunk";
  }
  return "?";
}

Form parse_form(const std::string& name) {
  for (Form f : kAllForms)
    if (name == form_name(f)) return f;
  throw ValueError(fmt::format("[mechanism] unknown form '{}'; forms are reference, recurrent, chunk", name));
}

std::string InputSpec::shape() const { return fmt::format("[{}]", fmt::join(dims, ",")); }

void register_mechanism(Mechanism m) {
  auto& r = registry();
  LNX_CHECK(!r.count(m.name), ValueError, "[registry] mechanism '{}' is already registered", m.name);
  r.emplace(m.name, std::move(m));
}

std::vector<std::string> mechanism_names() {
  std::vector<std::string> names;
  for (const auto& [name, m] : registry()) names.push_back(name);
  return names;
}

const Mechanism& mechanism(const std::string& name) {
  auto& r = registry();
  auto it = r.find(name);
  LNX_CHECK(it != r.end(), ValueError, "[mechanism] unknown mechanism '{}'; registered: {}", name,
            fmt::join(mechanism_names(), ", "));
  return it->second;
}

Call make_call(const std::string& op, Form form, const std::vector<InputSpec>& specs, const TensorDict& inputs,
               const MechanismOptions& options, DefaultScale default_scale, const OptionsSchema* schema) {
  for (const auto& [input, t] : inputs) {
    bool known = false;
    for (const auto& spec : specs) known = known || spec.name == input;
    LNX_CHECK(known, ValueError, "[{}] unknown input '{}'; inputs are {}", op, input, [&] {
      std::vector<std::string> names;
      for (const auto& spec : specs) names.push_back(spec.name);
      return fmt::format("{}", fmt::join(names, ", "));
    }());
    LNX_CHECK(t.defined(), ValueError, "[{}] input '{}' is an undefined tensor", op, input);
  }
  for (const auto& spec : specs)
    LNX_CHECK(!spec.required || inputs.contains(spec.name), ValueError, "[{}] missing required input '{}' {}", op,
              spec.name, spec.shape());
  Call c;
  c.op = op;
  c.form = form;
  c.inputs = inputs;
  c.options = options;
  check_dtypes(op, specs, inputs, c.dtype);
  std::map<std::string, std::string> bound_by;
  check_shapes(op, specs, inputs, c.sizes, bound_by, /*with_n=*/false);
  SequenceLayout& L = c.layout;
  L.B = size_or(c.sizes, "B", 0), L.T = size_or(c.sizes, "T", 0), L.H = size_or(c.sizes, "H", 0);
  L.K = size_or(c.sizes, "K", 0), L.V = size_or(c.sizes, "V", 0);
  L.offsets = sequence_offsets(op, L.B, L.T, options.cu_seqlens);
  L.N = static_cast<int64_t>(L.offsets.size()) - 1;
  c.sizes["N"] = L.N;
  check_shapes(op, specs, inputs, c.sizes, bound_by, /*with_n=*/true);
  if (form == Form::chunk) {
    LNX_CHECK(options.chunk_size >= 1 && options.chunk_size <= kMaxChunkSize &&
                  (options.chunk_size & (options.chunk_size - 1)) == 0,
              ValueError, "[{}] chunk_size is {}: expected a power of two up to {}", op, options.chunk_size,
              kMaxChunkSize);
    // Workspaces are sized by the chunk: one longer than the longest sequence only wastes memory
    // (2^12 rows of attention scores per thread), so it shrinks to the sequence, rounded up.
    int64_t longest = 1;
    for (size_t n = 0; n + 1 < L.offsets.size(); ++n) longest = std::max(longest, L.offsets[n + 1] - L.offsets[n]);
    int64_t fits = 1;
    while (fits < longest) fits *= 2;
    c.options.chunk_size = std::min(options.chunk_size, fits);
  }
  const double fallback = default_scale == DefaultScale::one ? 1.0 : 1.0 / std::sqrt(static_cast<double>(L.K));
  c.scale = options.scale ? *options.scale : fallback;
  if (schema)
    c.own = schema->decode(options.own, op);
  else
    LNX_CHECK(options.own.empty(), ValueError, "[{}] unknown option '{}'; it takes no options", op,
              options.own.begin()->first);
  return c;
}

MechanismOutputs run(const std::string& name, Form form, const TensorDict& inputs, const MechanismOptions& options) {
  const Mechanism& m = mechanism(name);
  auto it = m.forms.find(form);
  LNX_CHECK(it != m.forms.end(), ValueError, "[{}] has no {} form", name, form_name(form));
  const Call call = make_call(fmt::format("{}_{}", name, form_name(form)), form, m.inputs, inputs, options,
                              m.default_scale, &m.options);
  ProfileScope profile(ProfileCategory::kernel);
  return it->second(call);
}

MechanismOutputs run_primitive(const Primitive& p, const Call& call) {
  ProfileScope profile(ProfileCategory::kernel);
  Device device = Device::cpu;
  for (const auto& [name, t] : call.inputs) {
    device = t.device();
    break;
  }
  auto kernels = p.kernels.find(device);
  LNX_CHECK(kernels != p.kernels.end(), ValueError, "[{}] has no kernels for device {}", p.name, device_name(device));
  const DeviceKernels& k = kernels->second;
  std::vector<std::string> names;
  const TensorList inputs = differentiable_inputs(p, call.inputs, names);
  const bool grad = needs_grad(inputs);
  auto args = std::make_shared<const KernelArgs>(kernel_args(p, call));
  auto saved = std::make_shared<Saved>();
  KernelOutputs r;
  {
    FlushDenormals ftz;
    r = k.forward(*args, grad ? saved.get() : nullptr);
  }
  MechanismOutputs out;
  out.o = std::move(r.o);
  const bool with_final = call.options.output_final_state && r.final_state.defined();
  if (with_final) out.final_state = std::move(r.final_state);
  if (!grad) return out;
  // Saved tensors must not be the outputs themselves (a node holding its own output is a
  // reference cycle): keep views without history.
  Saved kept;
  for (const auto& [name, t] : *saved) kept.insert(name, t.detach());
  *saved = std::move(kept);
  std::vector<Tensor*> outputs{&out.o};
  if (with_final) outputs.push_back(&out.final_state);
  record(p.name, inputs, outputs,
         [args, saved, names, backward = k.backward, with_final](const VjpContext& c) -> TensorList {
           const Tensor d_o = c.grad(0).contiguous();
           const Tensor d_final = with_final ? c.grad(1).contiguous() : Tensor();
           TensorDict grads;
           {
             FlushDenormals ftz;
             grads = backward(*args, *saved, d_o, d_final);
           }
           TensorList result;
           for (const auto& name : names) {
             LNX_CHECK(grads.contains(name), Error, "[{}] backward gave no gradient for '{}'", args->op, name);
             result.push_back(grads.at(name));
           }
           return result;
         });
  return out;
}

MechanismOutputs run_primitive(const Primitive& p, Form form, const TensorDict& inputs, const MechanismOptions& options,
                               std::any own) {
  Call call = make_call(p.name, form, p.inputs, inputs, options);
  call.own = std::move(own);
  return run_primitive(p, call);
}

FormFn primitive_form(std::shared_ptr<const Primitive> p) {
  return [p](const Call& call) { return run_primitive(*p, call); };
}

}  // namespace lnx::kernels
