#include "modules/describe.h"

#include <fmt/format.h>

#include "core/markdown.h"
#include "modules/mixer.h"

namespace lnx::modules {

namespace {

std::string block_text(const MixerSpec& s) { return s.block_mlp ? "mixer + MLP" : "mixer only"; }

std::string bounds_text(const core::FieldInfo& f) {
  return f.bounds ? fmt::format("{} … {}", f.bounds->lo, f.bounds->hi) : std::string();
}

}  // namespace

nlohmann::json mixers_json() {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& name : mixer_names()) {
    const MixerSpec& s = mixer_spec(name);
    nlohmann::json j{{"name", s.name},
                     {"description", s.description},
                     {"mechanism", s.kernel},
                     {"block_mlp", s.block_mlp},
                     {"config", s.defaults.type_name()}};
    j["options"] = nlohmann::json::array();
    for (const auto& f : s.defaults.fields()) {
      nlohmann::json o{{"name", f.name}, {"type", f.type}, {"default", f.default_value}, {"help", f.help}};
      if (f.bounds) o["bounds"] = {f.bounds->lo, f.bounds->hi};
      j["options"].push_back(o);
    }
    all.push_back(j);
  }
  return all;
}

std::string mixers_table_markdown() {
  std::vector<std::vector<std::string>> rows;
  for (const auto& name : mixer_names()) {
    const MixerSpec& s = mixer_spec(name);
    rows.push_back({core::code(s.name), s.description, core::code(s.kernel), block_text(s)});
  }
  return core::markdown_table({"mixer", "layer recipe", "mechanism", "block"}, rows);
}

std::string mixers_markdown() {
  std::string out =
      "# Mixers\n\n"
      "Generated from the mixer registry by `linearnexus list mixers --format markdown`; do not "
      "edit by hand (a test compares this file with the binary's output).\n\n"
      "A mixer is a layer: `forward(x [B,T,D], state, cu_seqlens, mode) -> (y [B,T,D], state)`. "
      "A model's `layers:` entry names its mixer (`mixer:`), whether the block has an MLP "
      "(`mlp:`, default from the mixer's recipe) and any of the mixer's options below.\n\n";
  out += mixers_table_markdown();
  for (const auto& name : mixer_names()) {
    const MixerSpec& s = mixer_spec(name);
    out += fmt::format("\n## {}\n\n{}.\n\nMechanism: `{}`. Block: {}. Config: `{}`.\n\n", s.name, s.description,
                       s.kernel, block_text(s), s.defaults.type_name());
    std::vector<std::vector<std::string>> options;
    for (const auto& f : s.defaults.fields())
      options.push_back({core::code(f.name), f.type, core::code(f.default_value), bounds_text(f), f.help});
    out += core::markdown_table({"option", "type", "default", "range", "description"}, options);
  }
  return out;
}

}  // namespace lnx::modules
