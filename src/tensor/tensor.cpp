#include "tensor/tensor.h"

#include <cmath>
#include <cstring>
#include <ostream>
#include <sstream>

#include "tensor/autograd.h"
#include "tensor/cpu/loops.h"
#include "tensor/ops.h"

namespace lnx {

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t s : shape) LNX_CHECK(s >= 0, ShapeError, "[empty] shape {} has a negative dim", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  size_t nbytes = 0;
  LNX_CHECK(!__builtin_mul_overflow(static_cast<size_t>(numel_of(shape)), dtype_size(dtype), &nbytes), ShapeError,
            "[empty] {} {} does not fit in memory", dtype_name(dtype), shape_str(shape));
  impl->storage = std::make_shared<Storage>(nbytes);
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t axis) const { return shape()[normalize_axis(axis, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void Tensor::check_dtype(DType expected, const char* op) const {
  LNX_CHECK(dtype() == expected, DTypeError, "[{}] tensor is {}, expected {}", op, dtype_name(dtype()),
            dtype_name(expected));
}

namespace {
int64_t element_offset(const Tensor& t, const std::vector<int64_t>& index) {
  LNX_CHECK(t.defined(), ValueError, "[at] the tensor is undefined");
  LNX_CHECK(static_cast<int64_t>(index.size()) == t.dim(), ShapeError,
            "[at] index has {} entries for a tensor of shape {}", index.size(), shape_str(t.shape()));
  int64_t off = t.offset();
  for (size_t i = 0; i < index.size(); ++i) {
    int64_t v = index[i] < 0 ? index[i] + t.shape()[i] : index[i];
    LNX_CHECK(v >= 0 && v < t.shape()[i], ShapeError, "[at] index {} is out of range for dim {} of shape {}", index[i],
              i, shape_str(t.shape()));
    off += v * t.strides()[i];
  }
  return off;
}
}  // namespace

double Tensor::at(const std::vector<int64_t>& index) const {
  int64_t off = element_offset(*this, index);
  return dispatch_all(dtype(),
                      [&]<typename T>() { return static_cast<double>(static_cast<const T*>(storage()->data())[off]); });
}

void Tensor::set(const std::vector<int64_t>& index, double value) const {
  int64_t off = element_offset(*this, index);
  dispatch_all(dtype(), [&]<typename T>() { static_cast<T*>(storage()->data())[off] = static_cast<T>(value); });
}

double Tensor::item() const {
  LNX_CHECK(numel() == 1, ShapeError, "[item] tensor of shape {} has {} elements, expected 1", shape_str(shape()),
            numel());
  return at(std::vector<int64_t>(dim(), 0));
}

template <typename T> std::vector<T> Tensor::to_vector() const {
  LNX_CHECK(defined(), ValueError, "[to_vector] the tensor is undefined");
  Tensor c = Tensor::empty(shape(), dtype_v<T>);
  copy_into(*this, c);
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

bool Tensor::requires_grad() const { return impl_->requires_grad || impl_->grad_fn != nullptr; }

const Tensor& Tensor::set_requires_grad(bool on) const {
  LNX_CHECK(defined(), ValueError, "[set_requires_grad] the tensor is undefined");
  LNX_CHECK(is_leaf(), AutogradError,
            "[set_requires_grad] only leaves can be marked; this tensor was made by '{}' "
            "(use detach() to make a leaf)",
            impl_->grad_fn->name);
  LNX_CHECK(!on || is_floating(dtype()), AutogradError,
            "[set_requires_grad] only floating tensors can have gradients, this one is {}", dtype_name(dtype()));
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) const {
  if (g.defined())
    LNX_CHECK(g.shape() == shape() && g.dtype() == dtype(), ShapeError,
              "[set_grad] gradient is {} {} but the tensor is {} {}", dtype_name(g.dtype()), shape_str(g.shape()),
              dtype_name(dtype()), shape_str(shape()));
  impl_->grad = g.defined() ? g.impl_ptr() : nullptr;
}

void Tensor::zero_grad() const { impl_->grad = nullptr; }

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const { lnx::backward({*this}, {grad}, retain_graph); }

Tensor Tensor::contiguous() const { return lnx::contiguous(*this); }
Tensor Tensor::to(DType d) const { return lnx::to_dtype(*this, d); }
Tensor Tensor::reshape(const Shape& s) const { return lnx::reshape(*this, s); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return lnx::transpose(*this, a, b); }
Tensor Tensor::permute(const std::vector<int64_t>& o) const { return lnx::permute(*this, o); }
Tensor Tensor::clone() const { return lnx::clone(*this); }

namespace {
void print_rec(std::ostringstream& os, const Tensor& t, std::vector<int64_t>& idx, int64_t d, int64_t max_per_dim) {
  if (d == t.dim()) {
    double v = t.at(idx);
    if (is_floating(t.dtype()))
      os << fmt::format("{:.6g}", v);
    else
      os << static_cast<int64_t>(v);
    return;
  }
  os << "[";
  int64_t n = t.shape()[d];
  for (int64_t i = 0; i < n; ++i) {
    if (n > max_per_dim && i == max_per_dim / 2) {
      os << "..., ";
      i = n - max_per_dim / 2;
    }
    idx[d] = i;
    print_rec(os, t, idx, d + 1, max_per_dim);
    if (i + 1 < n) os << ", ";
  }
  os << "]";
}
}  // namespace

std::string Tensor::to_string(int64_t max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << dtype_name(dtype()) << shape_str(shape()) << ", ";
  std::vector<int64_t> idx(dim(), 0);
  if (numel() == 0)
    os << "[]";
  else
    print_rec(os, *this, idx, 0, std::max<int64_t>(max_per_dim, 2));
  if (impl_->grad_fn)
    os << ", grad_fn=" << impl_->grad_fn->name;
  else if (impl_->requires_grad)
    os << ", requires_grad";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

Tensor make_view(const Tensor& base, Shape shape, Strides strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// ---- creation ----
Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_all(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    const T v = static_cast<T>(value);
    parallel_for(t.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = v;
    });
  });
  return t;
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor scalar_tensor(double value, DType dtype) { return full({}, value, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }

Tensor arange(double start, double stop, double step, DType dtype) {
  LNX_CHECK(step != 0, ValueError, "[arange] step must be nonzero");
  const double count = std::ceil((stop - start) / step);
  LNX_CHECK(std::isfinite(count) && count < 9.0e15, ValueError,
            "[arange] start {}, stop {}, step {} do not give a finite number of elements", start, stop, step);
  const int64_t n = count < 0 ? 0 : static_cast<int64_t>(count);
  Tensor t = Tensor::empty({n}, dtype);
  dispatch_all(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + step * static_cast<double>(i));
  });
  return t;
}
Tensor arange(int64_t n, DType dtype) { return arange(0.0, static_cast<double>(n), 1.0, dtype); }

template <typename T> Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  LNX_CHECK(static_cast<int64_t>(values.size()) == numel_of(shape), ShapeError,
            "[from_vector] {} values do not fill shape {}", values.size(), shape_str(shape));
  Tensor t = Tensor::empty(shape, dtype_v<T>);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);

Tensor from_list(std::initializer_list<double> values, const Shape& shape, DType dtype) {
  std::vector<double> v(values);
  return from_vector<double>(v, shape).to(dtype);
}

// ---- random ----
namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Generator::Generator(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Generator::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

Generator::State Generator::state() const { return {{s_[0], s_[1], s_[2], s_[3]}, has_spare_, spare_}; }

void Generator::set_state(const State& st) {
  for (int i = 0; i < 4; ++i) s_[i] = st.s[i];
  has_spare_ = st.has_spare;
  spare_ = st.spare;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2.0 * M_PI * u2);
  has_spare_ = true;
  return r * std::cos(2.0 * M_PI * u2);
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_float(dtype, "randn", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(gen.normal());
  });
  return t;
}

Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_float(dtype, "uniform", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(low + (high - low) * gen.uniform());
  });
  return t;
}

Tensor randint(const Shape& shape, int64_t low, int64_t high, Generator& gen, DType dtype) {
  LNX_CHECK(high > low, ValueError, "[randint] empty range [{}, {})", low, high);
  Tensor t = Tensor::empty(shape, dtype);
  const uint64_t span = static_cast<uint64_t>(high - low);
  dispatch_index(dtype, "randint", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i)
      p[i] = static_cast<T>(low + static_cast<int64_t>(gen.next_u64() % span));
  });
  return t;
}

}  // namespace lnx
