// Where a tensor's storage lives. Only the CPU is built today; the kernel driver dispatches a
// fused primitive by (primitive, device), so a GPU backend adds a Device value, an allocator
// for its Storage and per-device kernels, and touches no mechanism's maths (docs/architecture.md,
// "Devices").
#pragma once

#include <cstdint>
#include <string>

namespace lnx {

enum class Device : uint8_t { cpu };

inline const char* device_name(Device d) {
  switch (d) {
    case Device::cpu:
      return "cpu";
  }
  return "?";
}

}  // namespace lnx
