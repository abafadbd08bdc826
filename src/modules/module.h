// Module: a node of a model that owns named parameters and child modules, so optimizers,
// checkpoints and weight loaders address every parameter by its dotted name
// ("blocks.3.mixer.q_proj.weight"). Parameters are autodiff leaves (requires_grad); a
// training step calls backward on the loss and reads each parameter's grad().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"
#include "tensor/tensor_dict.h"

namespace lnx::modules {

class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // Every parameter, recursively, as dotted names in registration order. The tensors are the
  // module's own handles: writing into them (optimizer updates) changes the module.
  TensorDict parameters() const;
  int64_t num_parameters() const;
  // Calls fn(dotted name, slot) for every parameter; assigning to the slot replaces it.
  void for_each_parameter(const std::function<void(const std::string&, Tensor&)>& fn, const std::string& prefix = "");
  // Calls fn on this module and every descendant, parents first.
  void for_each_module(const std::function<void(Module&)>& fn);
  // Converts every parameter (a new leaf of the given dtype, e.g. f64 for gradient checks).
  void to(DType dtype);
  DType dtype() const;  // of the first parameter (f32 for a module without any)

 protected:
  // The slot stays valid for the module's lifetime; keep a reference to it.
  Tensor& add_parameter(const std::string& name, const Tensor& value);
  template <class M> M& add_module(const std::string& name, std::unique_ptr<M> m) {
    M& ref = *m;
    children_.emplace_back(name, std::move(m));
    return ref;
  }

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

// Initialisations (papers' defaults are named where each module uses them).
Tensor init_normal(const Shape& shape, double std, Generator& gen);
Tensor init_uniform(const Shape& shape, double bound, Generator& gen);  // U(−bound, bound)

// While a SkipInit lives, init_normal and init_uniform on its thread return zeros of the shape
// without drawing from the generator. For loaders that build a module only to replace every
// parameter with stored weights (models::LMModel::for_loading): drawing the random
// initialisation of a 130M-parameter model takes seconds. Nests; off by default.
class SkipInit {
 public:
  SkipInit();
  ~SkipInit();
  SkipInit(const SkipInit&) = delete;
  SkipInit& operator=(const SkipInit&) = delete;
  static bool active();  // on this thread

 private:
  bool previous_;
};

}  // namespace lnx::modules
