// A fused form as one primitive (MLX's Primitive with eval_cpu and vjp): a kernel pair
// forward / backward per device over checked, detached, contiguous inputs. One driver
// (run_primitive) owns what every fused form needs around its maths:
//   validation from the input specs (make_call), detaching and making inputs contiguous, the
//   op name, the chunk plan, the flush-denormals scope (also over the parallel loops the
//   kernels start), dispatch by dtype and device, what is kept for backward, recording the
//   autodiff node (inputs: the differentiable inputs given; outputs: o and, when asked for,
//   final_state) and the profile category.
//
// Writing one: a struct with two static member templates,
//   struct GlaChunk {
//     template <typename T> static KernelOutputs forward(const KernelArgs& a, Saved* saved);
//     template <typename T> static TensorDict backward(const KernelArgs& a, const Saved& saved,
//                                                      const Tensor& d_o, const Tensor& d_final);
//   };
// forward fills saved (null when no backward will follow) with what backward needs beyond
// the inputs; backward returns the gradient of every input it was given, by name (d_final
// may be undefined: no gradient reaches the final state). Then
//   Primitive p = make_primitive<GlaChunk>("gla_chunk", specs, /*chunked=*/true);
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/common/chunk_plan.h"
#include "kernels/mechanism.h"

namespace lnx::kernels {

// What a fused kernel reads: the call's inputs, checked, detached and contiguous.
struct KernelArgs {
  std::string op;                         // the primitive's name, for messages
  SequenceLayout L;                       // B, T, H, K, V, N, sequence offsets
  std::map<std::string, int64_t> sizes;   // every bound size letter
  std::shared_ptr<const ChunkPlan> plan;  // chunked primitives: the chunks of every sequence
  DType dtype = DType::f32;
  double scale = 1.0;
  bool output_final_state = true;
  TensorDict in;  // by input name; optional inputs not given are absent
  std::any own;   // the options struct, as the mechanism declared it

  bool has(const std::string& name) const { return in.contains(name); }
  Tensor operator[](const std::string& name) const { return has(name) ? in.at(name) : Tensor(); }
  // Pointer to the input's first element, or nullptr when it was not given.
  template <typename T> const T* ptr(const std::string& name) const {
    return has(name) ? in.at(name).data<T>() : nullptr;
  }
  const ChunkPlan& chunks() const { return *plan; }
  template <class O> const O& options_as() const { return std::any_cast<const O&>(own); }
};

struct KernelOutputs {
  Tensor o;            // [B, T, H, V]
  Tensor final_state;  // [N, H, K, V] (the driver drops it unless output_final_state)
};

using Saved = TensorDict;  // what a forward keeps for its backward, by name

using KernelForward = std::function<KernelOutputs(const KernelArgs& a, Saved* saved)>;
using KernelBackward =
    std::function<TensorDict(const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final)>;

struct DeviceKernels {
  KernelForward forward;
  KernelBackward backward;
};

struct Primitive {
  std::string name;               // "gla_chunk": the op name in messages, nodes and profiles
  std::vector<InputSpec> inputs;  // what the kernels read
  bool chunked = false;           // the kernels read a ChunkPlan (KernelArgs::chunks)
  std::map<Device, DeviceKernels> kernels;
};

// The CPU kernels of Impl (static member templates forward<T> / backward<T>, T = float or
// double), dispatched by the inputs' dtype.
template <class Impl> Primitive make_primitive(std::string name, std::vector<InputSpec> inputs, bool chunked) {
  Primitive p{std::move(name), std::move(inputs), chunked, {}};
  DeviceKernels cpu;
  cpu.forward = [](const KernelArgs& a, Saved* saved) {
    return dispatch_float(a.dtype, a.op, [&]<typename T>() { return Impl::template forward<T>(a, saved); });
  };
  cpu.backward = [](const KernelArgs& a, const Saved& saved, const Tensor& d_o, const Tensor& d_final) {
    return dispatch_float(a.dtype, a.op,
                          [&]<typename T>() { return Impl::template backward<T>(a, saved, d_o, d_final); });
  };
  p.kernels.emplace(Device::cpu, std::move(cpu));
  return p;
}

// Runs p on a checked call (its inputs validated against p.inputs: make_call, or run() when
// p's inputs are its mechanism's) and records p's node when an input needs a gradient.
MechanismOutputs run_primitive(const Primitive& p, const Call& call);

// Validates inputs against p.inputs, then runs it (for forms that hand derived inputs to a
// primitive; own: the options struct the kernels read, if any).
MechanismOutputs run_primitive(const Primitive& p, Form form, const TensorDict& inputs, const MechanismOptions& options,
                               std::any own = {});

// A form that is the primitive itself, on the mechanism's own inputs.
FormFn primitive_form(std::shared_ptr<const Primitive> p);

}  // namespace lnx::kernels
