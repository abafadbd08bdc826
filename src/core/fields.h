// Typed fields of a config or options struct, declared once in a visit method:
//
//   struct GlaOptions {
//     int64_t window = 0;
//     template <class V> void visit(V&& v) {
//       v("window", window, "sliding window (0 = unlimited)", Bounds{0, 1e12});
//     }
//   };
//
// v(name, field, help) or v(name, field, help, Bounds{lo, hi}) per field, in display order.
// Field types: bool, int64_t, double, std::string, std::vector<std::string>,
// std::vector<int64_t>. Everything that reads, writes, checks or lists such a struct walks
// visit: YAML (config.h), named values from the CLI or code (assign_fields), bounds
// (check_bounds) and the tables of `linearnexus list` and the docs (describe_fields).
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "tensor/error.h"

namespace lnx::core {

// A closed interval [lo, hi] a numeric field must lie in (NaN never does).
struct Bounds {
  double lo, hi;
};

// One field as `list`, the docs and error messages show it.
struct FieldInfo {
  std::string name;
  std::string type;           // bool, int, float, string, list of strings, list of ints
  std::string default_value;  // as text
  std::string help;
  std::optional<Bounds> bounds;
};

// A scalar field's value given by name (from the CLI, a test, or code that sets an option).
using FieldValue = std::variant<bool, int64_t, double, std::string>;
using FieldValues = std::map<std::string, FieldValue>;

namespace fields_detail {

template <class T> constexpr const char* type_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_same_v<T, int64_t>)
    return "int";
  else if constexpr (std::is_same_v<T, double>)
    return "float";
  else if constexpr (std::is_same_v<T, std::string>)
    return "string";
  else if constexpr (std::is_same_v<T, std::vector<std::string>>)
    return "list of strings";
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
    return "list of ints";
  else
    static_assert(!sizeof(T), "unsupported field type");
}

template <class T> std::string text(const T& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v ? "true" : "false";
  else if constexpr (std::is_same_v<T, std::string>)
    return v;
  else if constexpr (std::is_same_v<T, double>)
    return fmt::format("{}", v);
  else if constexpr (std::is_same_v<T, int64_t>)
    return std::to_string(v);
  else
    return fmt::format("[{}]", fmt::join(v, ", "));
}

inline std::string value_text(const FieldValue& v) {
  return std::visit([](const auto& x) { return text(x); }, v);
}

// field ← value when the types agree (an int may give a float field); false otherwise.
template <class T> bool assign(T& field, const FieldValue& value) {
  if (const T* same = std::get_if<T>(&value)) {
    field = *same;
    return true;
  }
  if constexpr (std::is_same_v<T, double>)
    if (const int64_t* i = std::get_if<int64_t>(&value)) {
      field = static_cast<double>(*i);
      return true;
    }
  return false;
}

inline void apply_extra(FieldInfo& f, const Bounds& b) { f.bounds = b; }

template <class T> void check_one(const char* name, const T& field, const Bounds& b, const std::string& where) {
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    const double x = static_cast<double>(field);
    LNX_CHECK(!std::isnan(x) && x >= b.lo && x <= b.hi, ValueError, "[{}] {} = {}: expected {} … {}", where, name,
              text(field), text(static_cast<T>(b.lo)), text(static_cast<T>(b.hi)));
  }
}

}  // namespace fields_detail

// The fields of cfg (their defaults are cfg's values), in visit order.
template <class C> std::vector<FieldInfo> describe_fields(const C& cfg = C{}) {
  C copy = cfg;  // visit is not const (one method serves reading and writing)
  std::vector<FieldInfo> out;
  copy.visit([&](const char* name, auto& field, const char* help, const auto&... extra) {
    using T = std::decay_t<decltype(field)>;
    FieldInfo f{name, fields_detail::type_name<T>(), fields_detail::text(field), help, std::nullopt};
    (fields_detail::apply_extra(f, extra), ...);
    out.push_back(std::move(f));
  });
  return out;
}

// Checks every bounded field of cfg: ValueError "[where] window = -1: expected 0 … 1e12".
template <class C> void check_bounds(const C& cfg, const std::string& where) {
  C copy = cfg;
  copy.visit([&](const char* name, auto& field, const char*, const auto&... extra) {
    (void)name, (void)field;  // unused for fields without bounds
    (fields_detail::check_one(name, field, extra, where), ...);
  });
}

// Sets the named fields of cfg from values, then checks the bounds. An unknown name or a
// value of the wrong type is a ValueError naming where, the key and the valid keys or type.
template <class C> void assign_fields(C& cfg, const FieldValues& values, const std::string& where) {
  std::vector<std::string> names;
  cfg.visit([&](const char* name, auto&, const char*, const auto&...) { names.emplace_back(name); });
  for (const auto& entry : values) {
    const auto& key = entry.first;  // named, not a structured binding: clang 14 cannot capture those
    const auto& value = entry.second;
    bool known = false;
    cfg.visit([&](const char* name, auto& field, const char*, const auto&...) {
      if (key != name) return;
      known = true;
      using T = std::decay_t<decltype(field)>;
      if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<int64_t>>) {
        throw ValueError(fmt::format("[{}] option '{}' is a list: set it in a config file", where, key));
      } else {
        LNX_CHECK(fields_detail::assign(field, value), ValueError, "[{}] option '{}' must be {}, got {}", where, key,
                  fields_detail::type_name<T>(), fields_detail::value_text(value));
      }
    });
    LNX_CHECK(
        known, ValueError, "[{}] unknown option '{}'; {}", where, key,
        names.empty() ? std::string("it takes no options") : fmt::format("options are {}", fmt::join(names, ", ")));
  }
  check_bounds(cfg, where);
}

}  // namespace lnx::core
