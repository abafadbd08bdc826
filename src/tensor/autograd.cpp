#include "tensor/autograd.h"

#include <algorithm>
#include <atomic>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "tensor/ops.h"
#include "tensor/profile.h"

namespace lnx {

namespace {
thread_local bool t_grad_enabled = true;
thread_local int t_checkpoint_forward_depth = 0;
std::atomic<uint64_t> g_node_sequence{0};
}  // namespace

Node::~Node() {
  // A recurrence unrolled over T tokens makes a chain of T·k nodes; releasing it by nested
  // destructors would recurse that deep. Unlink children first and release them from a stack.
  std::vector<std::shared_ptr<Node>> stack;
  for (auto& e : inputs)
    if (e.fn) stack.push_back(std::move(e.fn));
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1)
      for (auto& e : n->inputs)
        if (e.fn) stack.push_back(std::move(e.fn));
  }
}

bool grad_enabled() { return t_grad_enabled; }
bool in_checkpoint_forward() { return t_checkpoint_forward_depth > 0; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool needs_grad(const TensorList& inputs) {
  if (!t_grad_enabled) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}
bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!t_grad_enabled) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const std::string& name, const TensorList& inputs, const std::vector<Tensor*>& outputs, VjpFn vjp) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->sequence = g_node_sequence.fetch_add(1);
  node->profile_category = static_cast<uint8_t>(profile_current());
  node->inputs.resize(inputs.size());
  node->needs.resize(inputs.size(), false);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined() || !t.requires_grad()) continue;
    node->needs[i] = true;
    if (t.is_leaf()) {
      node->inputs[i].leaf = t.impl_ptr();
    } else {
      node->inputs[i].fn = t.impl()->grad_fn;
      node->inputs[i].index = t.impl()->output_index;
    }
  }
  for (size_t k = 0; k < outputs.size(); ++k) {
    LNX_CHECK(outputs[k]->defined(), AutogradError, "[{}] output {} is undefined", name, k);
    TensorImpl* o = outputs[k]->impl();
    LNX_CHECK(o->grad_fn == nullptr && !o->requires_grad, AutogradError,
              "[record] output {} of '{}' already has autodiff history; ops must return fresh "
              "tensors",
              k, name);
    o->grad_fn = node;
    o->output_index = static_cast<int>(k);
    node->output_shapes.push_back(o->shape);
    node->output_dtypes.push_back(o->dtype);
  }
  node->differentiable = static_cast<bool>(vjp);
  node->vjp = std::move(vjp);
}

void record(const std::string& name, const TensorList& inputs, std::initializer_list<Tensor*> outputs, VjpFn vjp) {
  record(name, inputs, std::vector<Tensor*>(outputs), std::move(vjp));
}

namespace {

Tensor accumulate(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : g; }

// A leaf's gradient always owns its storage: a vjp may pass one gradient to several inputs
// (add does), and the caller's seed gradient may be returned as is; optimizers that update
// gradients in place must not change each other's or the caller's tensors.
Tensor accumulate_leaf(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : clone(g); }

// Runs backward from roots; nodes older than min_sequence are outside the region being
// differentiated (used by checkpoint) and meeting one is an error.
void run_backward(const TensorList& outputs, const TensorList& grad_outputs, bool retain_graph, uint64_t min_sequence,
                  const LeafReadyFn& on_leaf_ready = nullptr) {
  LNX_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), AutogradError,
            "[backward] {} outputs but {} gradients", outputs.size(), grad_outputs.size());
  ProfileScope profile(ProfileCategory::autodiff);  // paused while each vjp runs
  NoGradGuard no_grad;

  // Seed gradients.
  std::unordered_map<Node*, TensorList> grads;
  std::vector<Node*> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    LNX_CHECK(out.defined(), AutogradError, "[backward] output {} is undefined", i);
    Tensor g = i < grad_outputs.size() ? grad_outputs[i] : Tensor();
    if (!g.defined()) {
      LNX_CHECK(out.numel() == 1, AutogradError,
                "[backward] output {} has shape {}; an implicit gradient of 1 needs a single "
                "element, pass a gradient instead",
                i, shape_str(out.shape()));
      g = ones_like(out);
    }
    LNX_CHECK(g.shape() == out.shape() && g.dtype() == out.dtype(), AutogradError,
              "[backward] gradient {} is {} {} but the output is {} {}", i, dtype_name(g.dtype()), shape_str(g.shape()),
              dtype_name(out.dtype()), shape_str(out.shape()));
    if (!out.requires_grad()) {
      throw AutogradError(
          fmt::format("[backward] output {} does not require a gradient: no input of the computation "
                      "was marked with set_requires_grad (or it ran under no_grad)",
                      i));
    }
    if (out.is_leaf()) {
      out.impl()->grad = accumulate_leaf(out.grad(), g).impl_ptr();
      continue;
    }
    Node* n = out.impl()->grad_fn.get();
    auto& slot = grads[n];
    if (slot.empty()) slot.resize(n->output_shapes.size());
    slot[out.impl()->output_index] = accumulate(slot[out.impl()->output_index], g);
    roots.push_back(n);
  }

  // Topological order (Kahn) over the nodes reachable from the roots.
  std::unordered_map<Node*, int> pending;  // consumers not yet processed
  std::vector<Node*> stack(roots.begin(), roots.end());
  std::unordered_set<Node*> seen(roots.begin(), roots.end());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const auto& e : n->inputs) {
      if (!e.fn) continue;
      Node* p = e.fn.get();
      if (p->sequence < min_sequence)
        throw AutogradError(
            fmt::format("[checkpoint] the block uses a tensor made by '{}' outside it; pass every tensor "
                        "with gradient history into checkpoint through its inputs",
                        p->name));
      pending[p]++;
      if (seen.insert(p).second) stack.push_back(p);
    }
  }
  // Leaf edges of the reachable nodes, counted down as the nodes run: a leaf whose count reaches
  // zero has its final gradient.
  std::unordered_map<const TensorImpl*, int> leaf_pending;
  bool report_leaves = static_cast<bool>(on_leaf_ready);
  if (report_leaves)
    for (Node* n : seen) {
      report_leaves = report_leaves && !n->nested_backward;
      for (const auto& e : n->inputs)
        if (e.leaf) leaf_pending[e.leaf.get()]++;
    }
  // Newest node first: deterministic, and frees each node's saved tensors as early as possible.
  auto older = [](Node* a, Node* b) { return a->sequence < b->sequence; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(older)> ready(older);
  for (Node* r : seen)
    if (pending[r] == 0) ready.push(r);
  // Keep the shared_ptrs of visited nodes alive while their vjps run.
  std::vector<std::shared_ptr<Node>> keep_alive;

  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    TensorList node_grads;
    if (auto g = grads.find(n); g != grads.end()) {
      node_grads = std::move(g->second);
      grads.erase(g);
    }
    bool any = false;
    for (const auto& g : node_grads) any = any || g.defined();
    TensorList input_grads;
    if (any) {
      LNX_CHECK(n->differentiable, AutogradError,
                "[backward] '{}' has no vjp (it is forward-only); compute this path without "
                "gradients (no_grad / stop_gradient) or give the primitive a backward",
                n->name);
      LNX_CHECK(static_cast<bool>(n->vjp), AutogradError,
                "[backward] the graph through '{}' was freed by an earlier backward; pass "
                "retain_graph=true to run backward through it twice",
                n->name);
      node_grads.resize(n->output_shapes.size());
      for (size_t k = 0; k < node_grads.size(); ++k)
        if (!node_grads[k].defined()) node_grads[k] = zeros(n->output_shapes[k], n->output_dtypes[k]);
      {
        const auto category = static_cast<ProfileCategory>(n->profile_category);
        ProfileScope scope(category == ProfileCategory::none ? ProfileCategory::other : category);
        input_grads = n->vjp(VjpContext{node_grads, n->needs});
      }
      LNX_CHECK(input_grads.size() == n->inputs.size(), AutogradError,
                "[backward] vjp of '{}' returned {} gradients for {} inputs", n->name, input_grads.size(),
                n->inputs.size());
    }
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const auto& e = n->inputs[i];
      Tensor g = any && n->needs[i] ? input_grads[i] : Tensor();
      if (e.fn) {
        if (g.defined()) {
          Node* p = e.fn.get();
          const Shape& want = p->output_shapes[e.index];
          LNX_CHECK(g.shape() == want, AutogradError,
                    "[backward] vjp of '{}' gave a gradient {} for input {} of shape {}", n->name, shape_str(g.shape()),
                    i, shape_str(want));
          auto& slot = grads[p];
          if (slot.empty()) slot.resize(p->output_shapes.size());
          slot[e.index] = accumulate(slot[e.index], g);
        }
        keep_alive.push_back(e.fn);
        if (--pending[e.fn.get()] == 0) ready.push(e.fn.get());
      } else if (e.leaf && g.defined()) {
        LNX_CHECK(g.shape() == e.leaf->shape, AutogradError,
                  "[backward] vjp of '{}' gave a gradient {} for a leaf of shape {}", n->name, shape_str(g.shape()),
                  shape_str(e.leaf->shape));
        Tensor acc = e.leaf->grad ? Tensor(e.leaf->grad) : Tensor();
        Tensor gc = g.dtype() == e.leaf->dtype ? g : g.to(e.leaf->dtype);
        e.leaf->grad = accumulate_leaf(acc, gc).impl_ptr();
      }
      if (e.leaf && report_leaves && --leaf_pending[e.leaf.get()] == 0) on_leaf_ready(e.leaf.get());
    }
    if (!retain_graph) n->vjp = nullptr;  // frees what the vjp saved
  }
}

}  // namespace

void backward(const TensorList& outputs, const TensorList& grad_outputs, bool retain_graph) {
  run_backward(outputs, grad_outputs, retain_graph, 0);
}

void backward(const TensorList& outputs, const TensorList& grad_outputs, bool retain_graph,
              const LeafReadyFn& on_leaf_ready) {
  run_backward(outputs, grad_outputs, retain_graph, 0, on_leaf_ready);
}

Tensor stop_gradient(const Tensor& x) { return x.detach(); }

std::function<ValueAndGrad(const TensorDict&)> value_and_grad(LossFn fn) {
  return [fn = std::move(fn)](const TensorDict& params) {
    TensorDict leaves;
    for (const auto& [name, p] : params) {
      LNX_CHECK(is_floating(p.dtype()), DTypeError,
                "[value_and_grad] parameter '{}' is {}; parameters must be floating", name, dtype_name(p.dtype()));
      Tensor leaf = p.detach();
      leaf.set_requires_grad(true);
      leaves.insert(name, leaf);
    }
    ValueAndGrad out;
    {
      EnableGradGuard grad_on;
      out.value = fn(leaves);
    }
    LNX_CHECK(out.value.defined() && out.value.numel() == 1, ShapeError,
              "[value_and_grad] fn must return a single-element tensor, got {}",
              out.value.defined() ? shape_str(out.value.shape()) : std::string("undefined"));
    if (out.value.requires_grad()) backward({out.value});
    for (const auto& [name, leaf] : leaves) {
      Tensor g = leaf.grad();
      out.grads.insert(name, g.defined() ? g : zeros_like(leaf));
    }
    out.value = out.value.detach();
    return out;
  };
}

TensorList custom_vjp(const std::string& name, const TensorList& inputs, CustomForward forward,
                      CustomBackward backward_fn) {
  TensorList outputs;
  {
    NoGradGuard no_grad;
    outputs = forward(inputs);
  }
  for (const auto& o : outputs)
    LNX_CHECK(o.defined(), AutogradError, "[custom_vjp] forward of '{}' returned an undefined output", name);
  if (!needs_grad(inputs)) return outputs;
  TensorList saved_inputs, saved_outputs;
  for (const auto& t : inputs) saved_inputs.push_back(t.defined() ? t.detach() : t);
  std::vector<Tensor*> out_ptrs;
  for (auto& o : outputs) {
    // Outputs may alias inputs (a forward that returns its input); give each a fresh handle.
    o = o.detach();
    saved_outputs.push_back(o.detach());
    out_ptrs.push_back(&o);
  }
  VjpFn vjp;
  if (backward_fn)
    vjp = [saved_inputs, saved_outputs, backward_fn](const VjpContext& c) {
      return backward_fn(saved_inputs, saved_outputs, c.grads);
    };
  record(name, inputs, out_ptrs, std::move(vjp));
  return outputs;
}

TensorList checkpoint(BlockFn fn, const TensorList& inputs) {
  TensorList outputs;
  {
    NoGradGuard no_grad;
    struct Depth {
      Depth() { ++t_checkpoint_forward_depth; }
      ~Depth() { --t_checkpoint_forward_depth; }
    } depth;
    outputs = fn(inputs);
  }
  for (const auto& o : outputs)
    LNX_CHECK(o.defined(), AutogradError, "[checkpoint] the block returned an undefined output");
  if (!needs_grad(inputs) && !grad_enabled()) return outputs;
  TensorList saved_inputs;
  for (const auto& t : inputs) saved_inputs.push_back(t.defined() ? t.detach() : t);
  std::vector<Tensor*> out_ptrs;
  for (auto& o : outputs) {
    o = o.detach();
    out_ptrs.push_back(&o);
  }
  // The block may close over parameters (leaves), so record even when no input needs a
  // gradient: in that case the recorded node has no inputs that want one, but recomputation
  // still reaches the parameters.
  record("checkpoint", inputs, out_ptrs, [fn, saved_inputs](const VjpContext& c) {
    TensorList leaves;
    for (size_t i = 0; i < saved_inputs.size(); ++i) {
      Tensor leaf = saved_inputs[i].defined() ? saved_inputs[i].detach() : Tensor();
      if (leaf.defined() && c.needs_grad(i)) leaf.set_requires_grad(true);
      leaves.push_back(leaf);
    }
    TensorList recomputed;
    uint64_t start = g_node_sequence.load();
    {
      EnableGradGuard grad_on;
      recomputed = fn(leaves);
    }
    TensorList outs, grads;
    for (size_t k = 0; k < recomputed.size() && k < c.grads.size(); ++k) {
      if (!recomputed[k].requires_grad()) continue;
      outs.push_back(recomputed[k]);
      grads.push_back(c.grads[k]);
    }
    if (!outs.empty()) run_backward(outs, grads, false, start);
    TensorList result;
    for (const auto& leaf : leaves) result.push_back(leaf.defined() ? leaf.grad() : Tensor());
    return result;
  });
  for (const auto& o : outputs)
    if (o.impl()->grad_fn) o.impl()->grad_fn->nested_backward = true;
  return outputs;
}

}  // namespace lnx
