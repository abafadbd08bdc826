#include "arrays.h"

#include <nanobind/stl/string.h>

#include <memory>
#include <vector>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace lnx::python {

namespace {

const char* dlpack_dtype_name(nb::dlpack::dtype d) {
  using Code = nb::dlpack::dtype_code;
  switch (static_cast<Code>(d.code)) {
    case Code::Float:
      return d.bits == 16 ? "float16" : d.bits == 32 ? "float32" : d.bits == 64 ? "float64" : "float";
    case Code::Bfloat:
      return "bfloat16";
    case Code::Int:
      return d.bits == 8 ? "int8" : d.bits == 16 ? "int16" : d.bits == 32 ? "int32" : "int64";
    case Code::UInt:
      return "unsigned int";
    case Code::Bool:
      return "bool";
    case Code::Complex:
      return "complex";
    default:
      return "an unsupported dtype";
  }
}

DType lnx_dtype(nb::dlpack::dtype d, const std::string& what, const std::string& op) {
  using Code = nb::dlpack::dtype_code;
  if (d.lanes == 1) {
    if (d.code == static_cast<uint8_t>(Code::Float) && d.bits == 32) return DType::f32;
    if (d.code == static_cast<uint8_t>(Code::Float) && d.bits == 64) return DType::f64;
    if (d.code == static_cast<uint8_t>(Code::Int) && d.bits == 32) return DType::i32;
    if (d.code == static_cast<uint8_t>(Code::Int) && d.bits == 64) return DType::i64;
  }
  throw DTypeError(
      fmt::format("[{}] {} is {}: expected float32, float64, int32 or int64", op, what, dlpack_dtype_name(d)));
}

nb::dlpack::dtype dlpack_dtype(DType d) {
  switch (d) {
    case DType::f32:
      return nb::dtype<float>();
    case DType::f64:
      return nb::dtype<double>();
    case DType::i32:
      return nb::dtype<int32_t>();
    case DType::i64:
      return nb::dtype<int64_t>();
  }
  return nb::dtype<float>();
}

}  // namespace

const char* numpy_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "float32";
    case DType::f64:
      return "float64";
    case DType::i32:
      return "int32";
    case DType::i64:
      return "int64";
  }
  return "?";
}

AnyArray array_argument(nb::handle value, const std::string& what, const std::string& op) {
  AnyArray array;
  if (nb::try_cast(value, array)) return array;
  if (nb::hasattr(value, "device") && nb::hasattr(value.attr("device"), "type")) {  // a torch.device
    const std::string device = nb::cast<std::string>(value.attr("device").attr("type"));
    LNX_CHECK(device == "cpu", ValueError, "[{}] {} is on device {}: expected the CPU (move it with .cpu())", op, what,
              device);
  }
  throw ValueError(fmt::format("[{}] {} is a {}: expected a NumPy array or a PyTorch tensor", op, what,
                               nb::type_name(value.type()).c_str()));
}

Tensor tensor_from_array(const AnyArray& array, const std::string& what, const std::string& op) {
  LNX_CHECK(array.device_type() == nb::device::cpu::value, ValueError,
            "[{}] {} is on a device other than the CPU (DLPack device type {}): move it with .cpu() first", op, what,
            array.device_type());
  const DType dtype = lnx_dtype(array.dtype(), what, op);
  Shape shape(array.ndim());
  for (size_t i = 0; i < array.ndim(); ++i) shape[i] = static_cast<int64_t>(array.shape(i));
  // C-contiguous: each stride is the product of the sizes after it (sizes of 1, and every size
  // of an empty array, may carry any stride, as NumPy and PyTorch leave them).
  const bool empty = numel_of(shape) == 0;
  int64_t expected = 1;
  for (size_t i = array.ndim(); i-- > 0;) {
    if (shape[i] != 1 && !empty)
      LNX_CHECK(array.stride(i) == expected, ValueError,
                "[{}] {} {} is not C-contiguous (strides {} in elements): pass np.ascontiguousarray(x) or "
                "x.contiguous()",
                op, what, shape_str(shape), fmt::join(array.stride_ptr(), array.stride_ptr() + array.ndim(), ","));
    expected *= shape[i];
  }
  const size_t nbytes = static_cast<size_t>(numel_of(shape)) * dtype_size(dtype);
  // The storage keeps a reference to the array; dropping it may free a Python object, which
  // needs the GIL (the last tensor may go away in a call that released it).
  auto keep = std::make_shared<AnyArray>(array);
  auto release = [keep]() mutable {
    nb::gil_scoped_acquire gil;
    keep.reset();
  };
  auto storage = std::make_shared<Storage>(const_cast<void*>(array.data()), nbytes, std::move(release));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

nb::object array_from_tensor(const Tensor& tensor) {
  const Tensor t = tensor.is_contiguous() ? tensor.detach() : tensor.detach().contiguous();
  auto* owner = new std::shared_ptr<Storage>(t.storage());
  nb::capsule capsule(owner, [](void* p) noexcept { delete static_cast<std::shared_ptr<Storage>*>(p); });
  std::vector<size_t> shape(t.shape().begin(), t.shape().end());
  nb::ndarray<nb::numpy> array(t.raw_data(), shape.size(), shape.data(), capsule, nullptr, dlpack_dtype(t.dtype()));
  return array.cast();
}

}  // namespace lnx::python
