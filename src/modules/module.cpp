#include "modules/module.h"

#include "tensor/ops.h"

namespace lnx::modules {

void Module::for_each_parameter(const std::function<void(const std::string&, Tensor&)>& fn, const std::string& prefix) {
  for (auto& [name, slot] : params_) fn(prefix + name, *slot);
  for (auto& [name, child] : children_) child->for_each_parameter(fn, prefix + name + ".");
}

void Module::for_each_module(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [name, child] : children_) child->for_each_module(fn);
}

TensorDict Module::parameters() const {
  TensorDict out;
  const_cast<Module*>(this)->for_each_parameter([&](const std::string& name, Tensor& t) { out.insert(name, t); });
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : parameters()) n += t.numel();
  return n;
}

void Module::to(DType dtype) {
  for_each_parameter([&](const std::string&, Tensor& t) {
    if (t.dtype() == dtype) return;
    Tensor c = to_dtype(t.detach(), dtype);
    c.set_requires_grad();
    t = c;
  });
}

DType Module::dtype() const {
  const TensorDict p = parameters();
  return p.empty() ? DType::f32 : p.begin()->second.dtype();
}

Tensor& Module::add_parameter(const std::string& name, const Tensor& value) {
  Tensor leaf = contiguous(value.detach());
  leaf.set_requires_grad();
  params_.emplace_back(name, std::make_unique<Tensor>(leaf));
  return *params_.back().second;
}

namespace {
thread_local bool skip_init = false;
}  // namespace

SkipInit::SkipInit() : previous_(skip_init) { skip_init = true; }
SkipInit::~SkipInit() { skip_init = previous_; }
bool SkipInit::active() { return skip_init; }

Tensor init_normal(const Shape& shape, double std, Generator& gen) {
  if (skip_init) return zeros(shape);
  return mul(randn(shape, gen), std);
}

Tensor init_uniform(const Shape& shape, double bound, Generator& gen) {
  if (skip_init) return zeros(shape);
  return uniform(shape, -bound, bound, gen);
}

}  // namespace lnx::modules
