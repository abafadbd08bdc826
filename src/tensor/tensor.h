// Tensor: a cheap, shared handle to (storage, shape, strides, offset, dtype) plus the
// autodiff fields. Copying a Tensor copies the handle, never the data. Views (reshape,
// permute, slice, expand, …) make new handles over the same storage. Tensors are immutable
// by convention: ops return new tensors; the few in-place helpers say so in their names.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace lnx {

struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;     // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;

  // Autodiff. A leaf that wants a gradient has requires_grad; a tensor made by a recorded op
  // has grad_fn (the node that made it) and output_index (which of its outputs it is).
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
  int output_index = 0;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
};

class Tensor {
 public:
  Tensor() = default;  // undefined handle
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  const Shape& shape() const { return impl_->shape; }
  const Strides& strides() const { return impl_->strides; }
  int64_t offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return numel_of(impl_->shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  bool shares_storage(const Tensor& other) const { return storage() == other.storage(); }
  Device device() const { return impl_->storage ? impl_->storage->device() : Device::cpu; }

  // Pointer to the first element; T must match dtype.
  template <typename T> T* data() const {
    check_dtype(dtype_v<T>, "data");
    return static_cast<T*>(impl_->storage->data()) + impl_->offset;
  }
  void* raw_data() const { return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(dtype()); }

  // Element access, mostly for tests. Indices are logical (strides applied), values are
  // converted to/from double.
  double at(const std::vector<int64_t>& index) const;
  void set(const std::vector<int64_t>& index, double value) const;  // writes in place
  double item() const;                                              // single-element tensors
  template <typename T> std::vector<T> to_vector() const;           // logical (row-major) order

  // Autodiff.
  bool requires_grad() const;  // a leaf marked for gradients, or made by a recorded op
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  // Marks a leaf as wanting a gradient; throws for non-leaves and integer tensors.
  const Tensor& set_requires_grad(bool on = true) const;
  Tensor grad() const;  // undefined until a backward reached this leaf
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // forgets the accumulated gradient
  Tensor detach() const;   // same storage and view, no autodiff history
  // Reverse-mode backward from this tensor. Without an explicit gradient the tensor must
  // hold one element (a loss); its gradient is then 1.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  // Conveniences that call the op library (tensor/ops.h).
  Tensor contiguous() const;
  Tensor to(DType dtype) const;
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor clone() const;  // contiguous copy with its own storage, differentiable

  std::string to_string(int64_t max_per_dim = 6) const;

  void check_dtype(DType expected, const char* op) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// A view over existing storage; used by the view ops and loaders.
Tensor make_view(const Tensor& base, Shape shape, Strides strides, int64_t offset);

// ---- creation ----
Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor ones(const Shape& shape, DType dtype = DType::f32);
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
Tensor scalar_tensor(double value, DType dtype = DType::f32);  // 0-d tensor
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor arange(int64_t n, DType dtype = DType::f32);  // 0, 1, …, n-1
Tensor arange(double start, double stop, double step, DType dtype = DType::f32);

template <typename T> Tensor from_vector(const std::vector<T>& values, const Shape& shape);
Tensor from_list(std::initializer_list<double> values, const Shape& shape, DType dtype = DType::f32);

// Seeded pseudo-random numbers (xoshiro256** seeded by splitmix64). The same seed gives the
// same numbers on every machine and thread count.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0);
  uint64_t next_u64();
  double uniform();  // [0, 1)
  double normal();   // standard normal (Box–Muller)
  // The whole internal state (the xoshiro256** words and Box–Muller's spare), to save a
  // generator and restore it exactly without replaying its draws.
  struct State {
    uint64_t s[4];
    bool has_spare;
    double spare;
  };
  State state() const;
  void set_state(const State& state);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32);
Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype = DType::f32);
Tensor randint(const Shape& shape, int64_t low, int64_t high, Generator& gen,
               DType dtype = DType::i64);  // [low, high)

}  // namespace lnx
