// The built-in mechanisms, one declaration function per mechanism folder: the one place they
// are listed. A mechanism listed here is picked up by the registry-driven tests, the
// benchmarks, the CLI and the generated docs.
#pragma once

#include <vector>

#include "kernels/mechanism.h"

namespace lnx::kernels {

Mechanism simple_gla_mechanism();
Mechanism retention_mechanism();
Mechanism linear_attn_mechanism();
Mechanism mamba2_mechanism();
Mechanism mamba_mechanism();
Mechanism softmax_attention_mechanism();

inline std::vector<Mechanism> builtin_mechanisms() {
  return {simple_gla_mechanism(), retention_mechanism(), linear_attn_mechanism(), mamba2_mechanism(),
          mamba_mechanism(), softmax_attention_mechanism()};
}

}  // namespace lnx::kernels
