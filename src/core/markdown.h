// Markdown tables for the documents generated from the registries (`linearnexus list
// --format markdown`): one row per entry, cells escaped.
#pragma once

#include <string>
#include <vector>

namespace lnx::core {

// A GitHub-flavoured table: header row, separator, rows ('|' in cells escaped, newlines
// folded to spaces). Every row must have as many cells as the header.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// `text` as inline code (backticks), or "—" for an empty string.
std::string code(const std::string& text);

}  // namespace lnx::core
