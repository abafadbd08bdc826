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
Mechanism gla_mechanism();
Mechanism delta_rule_mechanism();
Mechanism gated_delta_rule_mechanism();
Mechanism kda_mechanism();
Mechanism mamba_mechanism();
Mechanism softmax_attention_mechanism();

inline std::vector<Mechanism> builtin_mechanisms() {
  std::vector<Mechanism> all;
  all.push_back(simple_gla_mechanism());
  all.push_back(retention_mechanism());
  all.push_back(linear_attn_mechanism());
  all.push_back(mamba2_mechanism());
  all.push_back(gla_mechanism());
  all.push_back(delta_rule_mechanism());
  all.push_back(gated_delta_rule_mechanism());
  all.push_back(kda_mechanism());
  all.push_back(mamba_mechanism());
  all.push_back(softmax_attention_mechanism());
  return all;
}

}  // namespace lnx::kernels
