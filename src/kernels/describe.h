// The mechanism registry as documents: what `linearnexus list mechanisms --format markdown |
// json` prints and docs/mechanisms.md and the README's table are generated from.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "kernels/mechanism.h"

namespace lnx::kernels {

// Every registered mechanism: name, description, equation, forms, inputs (name, shape,
// required, description), options (name, type, default, bounds, help), default scale, state.
nlohmann::json mechanisms_json();

// The summary table (one row per mechanism: name, what it is, state, options).
std::string mechanisms_table_markdown();

// The whole reference: the summary table, then per mechanism its equation, inputs and options.
std::string mechanisms_markdown();

}  // namespace lnx::kernels
