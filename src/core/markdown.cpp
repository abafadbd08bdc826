#include "core/markdown.h"

#include "tensor/error.h"

namespace lnx::core {

namespace {

std::string cell(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|')
      out += "\\|";
    else if (ch == '\n')
      out += ' ';
    else
      out += ch;
  }
  return out;
}

std::string row(const std::vector<std::string>& cells) {
  // (appended piece by piece: GCC 12 warns falsely (-Wrestrict) on " " + std::string)
  std::string out = "|";
  for (const auto& c : cells) {
    out += ' ';
    out += cell(c);
    out += " |";
  }
  out += '\n';
  return out;
}

}  // namespace

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string out = row(header);
  out += "|";
  for (size_t i = 0; i < header.size(); ++i) out += " --- |";
  out += "\n";
  for (const auto& r : rows) {
    LNX_CHECK(r.size() == header.size(), ValueError, "[markdown] a row has {} cells for {} columns", r.size(),
              header.size());
    out += row(r);
  }
  return out;
}

std::string code(const std::string& text) {
  if (text.empty()) return "—";
  std::string out = "`";
  out += text;
  out += '`';
  return out;
}

}  // namespace lnx::core
