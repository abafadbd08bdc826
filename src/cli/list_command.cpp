// `linearnexus list [mechanisms|mixers|presets] [--format text|markdown|table|json]`: the
// registries as text for people, as the Markdown documents in docs/ (markdown), as the
// README's summary tables (table), or as JSON for tools. docs/ and the README tables are
// generated from this command (scripts/gen_docs.sh) and a test checks they are current.
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "kernels/describe.h"
#include "modules/describe.h"
#include "tensor/error.h"

namespace lnx::cli {

namespace {

struct ListOptions {
  std::string section;  // empty = all
  std::string format = "text";
};

int run_list(const ListOptions& o) {
  const std::string& what = o.section;
  const bool all = what.empty();
  LNX_CHECK(all || what == "mechanisms" || what == "mixers" || what == "presets", ValueError,
            "[list] unknown section '{}'; sections: mechanisms, mixers, presets", what);
  LNX_CHECK(o.format == "text" || o.format == "markdown" || o.format == "table" || o.format == "json", ValueError,
            "[list] unknown format '{}'; formats: text, markdown, table, json", o.format);
  if (o.format == "json") {
    nlohmann::json doc;
    if (all || what == "mechanisms") doc["mechanisms"] = kernels::mechanisms_json();
    if (all || what == "mixers") doc["mixers"] = modules::mixers_json();
    fmt::print("{}\n", doc.dump(2));
    return 0;
  }
  if (o.format == "markdown" || o.format == "table") {
    const bool table = o.format == "table";
    if (all || what == "mechanisms")
      fmt::print("{}", table ? kernels::mechanisms_table_markdown() : kernels::mechanisms_markdown());
    if (all || what == "mixers")
      fmt::print("{}", table ? modules::mixers_table_markdown() : modules::mixers_markdown());
    return 0;
  }
  if (all || what == "mechanisms") {
    if (all) fmt::print("# mechanisms (kernels)\n\n");
    print_mechanisms();
  }
  if (all || what == "mixers") {
    if (all) fmt::print("# mixers (layers)\n\n");
    print_mixers();
  }
  if (all || what == "presets") {
    if (all) fmt::print("# presets (models)\n\n");
    print_presets();
  }
  return 0;
}

}  // namespace

void add_list_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<ListOptions>();
  auto* list = app.add_subcommand("list",
                                  "List the registered mechanisms (forms, inputs, options), mixers and "
                                  "model presets");
  list->add_option("section", o->section, "mechanisms | mixers | presets (default: all)");
  list->add_option("--format", o->format,
                   "text | markdown (the docs/ pages) | table (the README's summary table) | json")
      ->capture_default_str();
  list->callback([o, &action] { action = [o] { return run_list(*o); }; });
}

}  // namespace lnx::cli
