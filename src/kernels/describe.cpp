#include "kernels/describe.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/markdown.h"

namespace lnx::kernels {

namespace {

std::vector<std::string> form_names(const Mechanism& m) {
  std::vector<std::string> out;
  for (const auto& [form, fn] : m.forms) out.push_back(form_name(form));
  return out;
}

std::string bounds_text(const core::FieldInfo& f) {
  return f.bounds ? fmt::format("{} … {}", f.bounds->lo, f.bounds->hi) : std::string();
}

std::string state_text(const Mechanism& m) { return m.has_recurrent_state ? "[N,H,K,V]" : "KV cache (extra_state)"; }

std::string scale_text(const Mechanism& m) { return m.default_scale == DefaultScale::one ? "1" : "K^-1/2"; }

std::string option_names(const Mechanism& m) {
  std::vector<std::string> names;
  for (const auto& f : m.options.fields) names.push_back(f.name);
  return names.empty() ? "—" : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

nlohmann::json mechanisms_json() {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& name : mechanism_names()) {
    const Mechanism& m = mechanism(name);
    nlohmann::json j;
    j["name"] = m.name;
    j["description"] = m.description;
    j["equation"] = m.equation;
    j["forms"] = form_names(m);
    j["default_scale"] = scale_text(m);
    j["state"] = state_text(m);
    j["inputs"] = nlohmann::json::array();
    for (const auto& in : m.inputs)
      j["inputs"].push_back(
          {{"name", in.name}, {"shape", in.shape()}, {"required", in.required}, {"description", in.description}});
    j["options"] = nlohmann::json::array();
    for (const auto& f : m.options.fields) {
      nlohmann::json o{{"name", f.name}, {"type", f.type}, {"default", f.default_value}, {"help", f.help}};
      if (f.bounds) o["bounds"] = {f.bounds->lo, f.bounds->hi};
      j["options"].push_back(o);
    }
    all.push_back(j);
  }
  return all;
}

std::string mechanisms_table_markdown() {
  std::vector<std::vector<std::string>> rows;
  for (const auto& name : mechanism_names()) {
    const Mechanism& m = mechanism(name);
    rows.push_back({core::code(m.name), m.description, state_text(m), option_names(m)});
  }
  return core::markdown_table({"mechanism", "what it is", "state", "own options"}, rows);
}

std::string mechanisms_markdown() {
  std::string out =
      "# Mechanisms\n\n"
      "Generated from the mechanism registry by `linearnexus list mechanisms --format markdown`; "
      "do not edit by hand (a test compares this file with the binary's output).\n\n"
      "Every mechanism has the forms listed, with exact gradients, and takes the common options "
      "`scale`, `chunk_size` (chunk form, a power of two), `output_final_state` and `cu_seqlens` "
      "(packed sequences, B = 1). Size letters: B batch, T time, H heads, K key dim, V value dim, "
      "N sequences; other letters are bound by the first input that has them.\n\n";
  out += mechanisms_table_markdown();
  for (const auto& name : mechanism_names()) {
    const Mechanism& m = mechanism(name);
    out += fmt::format("\n## {}\n\n{}.\n\n    {}\n\nForms: {}. Default scale: {}. State: {}.\n\n", m.name,
                       m.description, m.equation, fmt::join(form_names(m), ", "), scale_text(m), state_text(m));
    std::vector<std::vector<std::string>> inputs;
    for (const auto& in : m.inputs)
      inputs.push_back({core::code(in.name), in.shape(), in.required ? "yes" : "no", in.description});
    out += core::markdown_table({"input", "shape", "required", "description"}, inputs);
    if (m.options.fields.empty()) continue;
    std::vector<std::vector<std::string>> options;
    for (const auto& f : m.options.fields)
      options.push_back({core::code(f.name), f.type, core::code(f.default_value), bounds_text(f), f.help});
    out += '\n';
    out += core::markdown_table({"option", "type", "default", "range", "description"}, options);
  }
  return out;
}

}  // namespace lnx::kernels
