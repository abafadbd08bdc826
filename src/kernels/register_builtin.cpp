// The one place built-in mechanisms are listed. A mechanism registered here is picked up by
// the registry-driven tests, the benchmarks and the CLI.
#include "kernels/builtin.h"

namespace lnx::kernels {

void register_builtin_mechanisms(std::map<std::string, Mechanism>& registry) {
  for (Mechanism m : builtin_mechanisms()) {
    LNX_CHECK(!registry.count(m.name), ValueError, "[registry] '{}' is listed twice", m.name);
    registry.emplace(m.name, std::move(m));
  }
}

}  // namespace lnx::kernels
