// Config base: typed config structs read from and written to YAML.
//
// A config struct lists its fields once, in a visit method:
//   template <class V> void visit(V&& v) { v("num_heads", num_heads, "heads"); … }
// and read_config / write_config walk it. Field types: int64_t, double, bool, std::string,
// std::vector<std::string>, std::vector<int64_t> (another type fails to compile).
//
// Reading is strict, because a typo in a config silently running with a default is worse than
// an error: an unknown key, a key given twice, a value of the wrong type or a section that is
// not a map raises ValueError naming `where` (the file and the section), the line and column,
// the key, and the valid keys or the expected type:
//   [config] model.yaml: mixers.attention line 3, column 5: unknown key 'nm_heads'; valid keys: …
// Accepted scalars:
//   int64_t     decimal integers with an optional sign ("1.5", "1e3", "0x10", "" are errors);
//   double      decimal or scientific numbers, integers, and YAML's .inf / -.inf / .nan;
//   bool        what yaml-cpp accepts: true/false, yes/no, on/off, y/n (lower, Title or UPPER
//               case) — YAML 1.1's booleans, which users write; "1" / "0" are errors;
//   std::string any scalar, as written (a map, a list or an empty value is an error).
// Lists must be YAML sequences of such scalars ([a, b] or one "- a" per line).
// An empty section (an empty document, or "key:" with nothing after it) reads as no keys.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/fields.h"

namespace lnx::core {

// A scalar field's value from text ("key=value" on a command line), read as YAML reads it
// into a field of info.type (bool, int, float or string); ValueError naming where and the key.
FieldValue field_value_from_text(const FieldInfo& info, const std::string& text, const std::string& where);

// Parses a YAML file. Missing or unreadable file: IOError naming the path; malformed YAML:
// ValueError "[config] <path> line L, column C: <what the parser says>".
YAML::Node load_yaml_file(const std::string& path);
// Parses YAML text; errors name source_name (a path or "<string>") like load_yaml_file's.
YAML::Node parse_yaml(const std::string& text, const std::string& source_name);

// The node as YAML text (block style; lists written by write_config are in flow style).
std::string to_yaml_string(const YAML::Node& node);

namespace config_detail {
// One field's value from its node (ValueError naming key, expected type, text and position).
void read_value(const YAML::Node& node, int64_t& out, const std::string& key, const std::string& where);
void read_value(const YAML::Node& node, double& out, const std::string& key, const std::string& where);
void read_value(const YAML::Node& node, bool& out, const std::string& key, const std::string& where);
void read_value(const YAML::Node& node, std::string& out, const std::string& key, const std::string& where);
void read_value(const YAML::Node& node, std::vector<std::string>& out, const std::string& key,
                const std::string& where);
void read_value(const YAML::Node& node, std::vector<int64_t>& out, const std::string& key, const std::string& where);

// One field's value as a node (doubles as their shortest round-trip text).
YAML::Node write_value(int64_t v);
YAML::Node write_value(double v);
YAML::Node write_value(bool v);
YAML::Node write_value(const std::string& v);
YAML::Node write_value(const std::vector<std::string>& v);
YAML::Node write_value(const std::vector<int64_t>& v);

// False for an empty section (null or undefined node); true for a map; ValueError otherwise.
bool check_section(const YAML::Node& map, const std::string& where);
// The text of a mapping key, checked: a scalar, in valid, not in seen (which it joins).
// ValueError otherwise ("unknown key 'x'; valid keys: a, b", "key 'x' is given twice").
std::string check_key(const YAML::Node& key, const std::vector<std::string>& valid, std::vector<std::string>& seen,
                      const std::string& where);

bool contains(const std::vector<std::string>& keys, const std::string& key);
}  // namespace config_detail

// Reads every key present in map into cfg's field of that name; absent keys keep cfg's values.
// The valid keys are allowed_keys when given (e.g. the options one mixer accepts), else all of
// cfg's fields. A valid key that is not a field is skipped: the caller reads it (e.g. a nested
// section) — so allowed_keys can both narrow the fields and admit extra keys.
template <class C> void read_config(const YAML::Node& map, C& cfg, const std::string& where,
                                    const std::vector<std::string>* allowed_keys = nullptr) {
  if (!config_detail::check_section(map, where)) return;
  std::vector<std::string> fields;
  cfg.visit([&](const char* name, auto&, const char*, const auto&...) { fields.emplace_back(name); });
  const std::vector<std::string>& valid = allowed_keys ? *allowed_keys : fields;
  std::vector<std::string> seen;
  for (const auto& item : map) {
    const std::string key = config_detail::check_key(item.first, valid, seen, where);
    cfg.visit([&](const char* name, auto& field, const char*, const auto&...) {
      if (key == name) config_detail::read_value(item.second, field, key, where);
    });
  }
}

// cfg as a map of its fields, in visit order (only those named in keys when given).
template <class C> YAML::Node write_config(const C& cfg, const std::vector<std::string>* keys = nullptr) {
  C copy = cfg;  // visit is not const (one method serves reading and writing)
  YAML::Node node(YAML::NodeType::Map);
  copy.visit([&](const char* name, auto& field, const char*, const auto&...) {
    if (!keys || config_detail::contains(*keys, name)) node[name] = config_detail::write_value(field);
  });
  return node;
}

}  // namespace lnx::core
