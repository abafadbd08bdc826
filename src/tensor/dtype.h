// Element types. f32 is the compute type, f64 the type of references and gradient checks,
// i32/i64 hold indices. bf16/f16 exist only as file formats (safetensors converts them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "tensor/error.h"

namespace lnx {

enum class DType : uint8_t { f32, f64, i32, i64 };

inline size_t dtype_size(DType d) {
  switch (d) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
  }
  return 0;
}

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
  }
  return "?";
}

inline bool is_floating(DType d) { return d == DType::f32 || d == DType::f64; }

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <typename T> inline constexpr DType dtype_v = dtype_of<T>::value;

// dispatch_float(dtype, "op", [&]<typename T>() { ... }) runs the body with T = float or double.
template <typename F> decltype(auto) dispatch_float(DType d, std::string_view op, F&& f) {
  switch (d) {
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
    default:
      throw DTypeError(fmt::format("[{}] expected a floating dtype (f32 or f64), got {}", op, dtype_name(d)));
  }
}

// dispatch_all: every dtype (arithmetic that also makes sense on indices).
template <typename F> decltype(auto) dispatch_all(DType d, F&& f) {
  switch (d) {
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
    case DType::i32:
      return f.template operator()<int32_t>();
    case DType::i64:
      return f.template operator()<int64_t>();
  }
  return f.template operator()<float>();
}

// dispatch_index: i32 or i64 (index tensors).
template <typename F> decltype(auto) dispatch_index(DType d, std::string_view op, F&& f) {
  switch (d) {
    case DType::i32:
      return f.template operator()<int32_t>();
    case DType::i64:
      return f.template operator()<int64_t>();
    default:
      throw DTypeError(fmt::format("[{}] expected an index dtype (i32 or i64), got {}", op, dtype_name(d)));
  }
}

}  // namespace lnx
