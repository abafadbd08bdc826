// The mixer registry as documents: what `linearnexus list mixers --format markdown | table |
// json` prints and docs/mixers.md and the README's table are generated from.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace lnx::modules {

// Every registered mixer: name, description, mechanism, block (MLP or not), typed options
// (name, type, default, bounds, help).
nlohmann::json mixers_json();

// The summary table (one row per mixer: name, what it is, mechanism, block).
std::string mixers_table_markdown();

// The whole reference: the summary table, then per mixer its options.
std::string mixers_markdown();

}  // namespace lnx::modules
