// Helpers shared by the fuzz targets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tensor/error.h"

namespace lnx::fuzz {

// A scratch directory of this process (created once, removed at exit).
const std::string& scratch_dir();

// Writes bytes to scratch_dir()/name and returns the path.
std::string write_scratch(const std::string& name, std::string_view bytes);

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs f; an lnx::Error is an accepted refusal (false), anything else propagates (a finding).
template <class F> bool refusals_allowed(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace lnx::fuzz
