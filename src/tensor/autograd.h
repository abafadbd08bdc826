// Eager reverse-mode autodiff. Each op that runs in grad mode on an input that needs a
// gradient records a Node: its inputs (edges to leaves or to the nodes that made them) and a
// vjp closure that maps output gradients to input gradients. backward() walks the nodes in
// reverse topological order. Closures capture what backward needs (inputs, or detach()ed
// outputs: capturing an output with its history would make a reference cycle).
//
// On top: value_and_grad over named parameters, no_grad scopes, stop_gradient, custom vjps,
// and checkpoint (rematerialisation).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"
#include "tensor/tensor_dict.h"

namespace lnx {

using TensorList = std::vector<Tensor>;

// ---- grad mode ----
bool grad_enabled();
void set_grad_enabled(bool on);

class NoGradGuard {  // RAII: grad mode off in this scope
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

class EnableGradGuard {  // RAII: grad mode on in this scope
 public:
  EnableGradGuard() : prev_(grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

// ---- recording ----
// What a vjp sees: the gradient of each output (zeros where an output got none) and which
// inputs want a gradient (others may be returned undefined).
struct VjpContext {
  const TensorList& grads;
  const std::vector<bool>& needs;
  const Tensor& grad(size_t output = 0) const { return grads[output]; }
  bool needs_grad(size_t input) const { return needs[input]; }
};
// Returns one gradient per input, shaped like that input (undefined = no gradient).
using VjpFn = std::function<TensorList(const VjpContext&)>;

struct Node {
  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();  // releases long chains iteratively (a recursive release would overflow the stack)

  struct Edge {
    std::shared_ptr<TensorImpl> leaf;  // input is a leaf that wants a gradient
    std::shared_ptr<Node> fn;          // or: input was made by this node …
    int index = 0;                     // … as its output number index
  };
  std::string name;
  std::vector<Edge> inputs;
  std::vector<bool> needs;  // per input: does a gradient flow there?
  std::vector<Shape> output_shapes;
  std::vector<DType> output_dtypes;
  VjpFn vjp;                     // released after backward unless retain_graph
  bool differentiable = true;    // false: a forward-only primitive; backward through it is an error
  uint64_t sequence = 0;         // creation order; checkpoint uses it to find its own nodes
  uint8_t profile_category = 0;  // ProfileCategory active when recorded (tensor/profile.h)
  bool nested_backward = false;  // its vjp runs a backward of its own (checkpoint) that reaches leaves
                                 // this graph has no edges to
};

// True when grad mode is on and some defined input requires a gradient.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const TensorList& inputs);

// Makes outputs the results of a new node named name over inputs with the given vjp. Call
// only when needs_grad(inputs); the outputs must be fresh tensors made by the op. An empty
// vjp marks a forward-only primitive: gradients may not flow through it, and a backward that
// reaches it raises AutogradError naming it.
void record(const std::string& name, const TensorList& inputs, std::initializer_list<Tensor*> outputs, VjpFn vjp);
void record(const std::string& name, const TensorList& inputs, const std::vector<Tensor*>& outputs, VjpFn vjp);

// ---- running backward ----
// Accumulates d(outputs)/d(leaf) · grad_outputs into every reachable leaf's grad. An
// undefined grad_output for a one-element output means 1.
void backward(const TensorList& outputs, const TensorList& grad_outputs = {}, bool retain_graph = false);

// The same, calling on_leaf_ready(leaf) as soon as a leaf's gradient is final: every node of
// this backward with an edge to the leaf has run (data-parallel training starts reducing a
// bucket of gradients then, while the rest of the backward runs). A leaf no node reaches is
// not reported, nor is any leaf when the graph holds a node whose vjp runs a backward of its
// own (checkpoint): the leaves that inner backward reaches are unknown beforehand.
using LeafReadyFn = std::function<void(const TensorImpl* leaf)>;
void backward(const TensorList& outputs, const TensorList& grad_outputs, bool retain_graph,
              const LeafReadyFn& on_leaf_ready);

// ---- functional surface ----
// The same tensor, cut from the graph: no gradient flows through it.
Tensor stop_gradient(const Tensor& x);

struct ValueAndGrad {
  Tensor value;
  TensorDict grads;  // same names and order as the parameters; zeros where no path exists
};
using LossFn = std::function<Tensor(const TensorDict& params)>;
// value_and_grad(fn)(params): calls fn on fresh leaves that share params' storage, and
// returns fn's (single-element) value and its gradient with respect to every parameter.
std::function<ValueAndGrad(const TensorDict&)> value_and_grad(LossFn fn);

// A primitive with a hand-written vjp. forward runs without recording; backward gets the
// inputs, the outputs and the output gradients and returns one gradient per input. An empty
// backward makes a forward-only primitive (backward through it raises AutogradError).
using CustomForward = std::function<TensorList(const TensorList& inputs)>;
using CustomBackward =
    std::function<TensorList(const TensorList& inputs, const TensorList& outputs, const TensorList& grads)>;
TensorList custom_vjp(const std::string& name, const TensorList& inputs, CustomForward forward,
                      CustomBackward backward);

// Rematerialisation: runs fn without keeping its activations; backward runs fn again and
// differentiates it. fn may close over leaves (parameters); any other tensor with history
// must be passed through inputs (a clear error says so otherwise).
using BlockFn = std::function<TensorList(const TensorList& inputs)>;
TensorList checkpoint(BlockFn fn, const TensorList& inputs);
// True while checkpoint runs a block's first, unrecorded pass: a forward that backward will
// repeat with gradients, so choices made on "is this training?" must match in both passes.
bool in_checkpoint_forward();

}  // namespace lnx
