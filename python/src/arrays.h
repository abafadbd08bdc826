// Arrays across the Python boundary: NumPy arrays and PyTorch tensors (DLPack or the buffer
// protocol) in, NumPy arrays out, both without copying the data.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <string>

#include "tensor/tensor.h"

namespace lnx::python {

namespace nb = nanobind;

// Any array-like object nanobind can view: any dtype, shape and device (checked here, so that
// the error names the argument instead of nanobind's generic signature mismatch).
using AnyArray = nb::ndarray<nb::ro>;

// The argument `what` of op as an array view, or an error naming it: not array-like, or a
// PyTorch tensor on another device (which DLPack cannot hand to the CPU).
AnyArray array_argument(nb::handle value, const std::string& what, const std::string& op);

// A Tensor over the array's memory, no copy; the array stays alive as long as the Tensor's
// storage does. f32, f64, i32 and i64, C-contiguous, on the CPU; anything else raises an
// error naming `what` (e.g. "q") and the op (e.g. "linearnexus.ops.gla").
Tensor tensor_from_array(const AnyArray& array, const std::string& what, const std::string& op);

// The NumPy name of a dtype ("float32", …), for messages to Python users.
const char* numpy_dtype_name(DType dtype);

// A NumPy array over the tensor's storage (a contiguous copy first when the tensor is a view
// with gaps); the storage lives as long as the array.
nb::object array_from_tensor(const Tensor& tensor);

}  // namespace lnx::python
