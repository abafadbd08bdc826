// Config base: YAML parsing with positioned errors, strict scalar conversion, and value
// emission (see config.h for the accepted forms).
#include "core/config.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>

#include "tensor/error.h"

namespace lnx::core {

namespace {

// "<where> line L, column C" (1-based), or just where for a node made in code (no position).
std::string at(const std::string& where, const YAML::Mark& mark) {
  if (mark.is_null()) return where;
  return fmt::format("{} line {}, column {}", where, mark.line + 1, mark.column + 1);
}

// What a non-scalar node is, for "got …" in messages.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
  }
  return "?";
}

[[noreturn]] void wrong_type(const YAML::Node& node, const std::string& key, const char* expected,
                             const std::string& where) {
  throw ValueError(
      fmt::format("[config] {}: '{}' must be {}, got {}", at(where, node.Mark()), key, expected, describe(node)));
}

// The scalar text of node, or a wrong-type error.
const std::string& scalar(const YAML::Node& node, const std::string& key, const char* expected,
                          const std::string& where) {
  if (!node.IsScalar()) wrong_type(node, key, expected, where);
  return node.Scalar();
}

// Drops one leading '+' (from_chars takes '-' only); false for an empty rest or "+-…".
bool strip_plus(std::string_view& t) {
  if (!t.empty() && t[0] == '+') {
    t.remove_prefix(1);
    if (!t.empty() && t[0] == '-') return false;
  }
  return !t.empty();
}

// Whole-string conversions; false when the text is not exactly one number of that kind.
bool parse_int(const std::string& s, int64_t& out) {
  std::string_view t = s;
  if (!strip_plus(t)) return false;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), out);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

bool parse_double(const std::string& s, double& out) {
  static const char* kInf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"};
  static const char* kNegInf[] = {"-.inf", "-.Inf", "-.INF"};
  static const char* kNan[] = {".nan", ".NaN", ".NAN"};
  auto one_of = [&](const auto& names) {
    for (const char* n : names)
      if (s == n) return true;
    return false;
  };
  if (one_of(kInf) || one_of(kNegInf) || one_of(kNan)) {
    out = one_of(kNan) ? NAN : one_of(kInf) ? INFINITY : -INFINITY;
    return true;
  }
  std::string_view t = s;
  if (!strip_plus(t)) return false;
  // A digit or '.' must follow the sign: from_chars would also take "inf", "nan", "infinity".
  const size_t first = t[0] == '-' ? 1 : 0;
  if (first >= t.size() || !(std::isdigit(static_cast<unsigned char>(t[first])) || t[first] == '.')) return false;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), out, std::chars_format::general);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

}  // namespace

YAML::Node parse_yaml(const std::string& text, const std::string& source_name) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {  // ParserException, and DeepRecursion for hostile nesting
    throw ValueError(fmt::format("[config] {}: {}", at(source_name, e.mark), e.msg));
  }
}

YAML::Node load_yaml_file(const std::string& path) {
  // A config is a few KB: a directory, a device (/dev/zero) or a huge file is refused unread.
  constexpr uintmax_t kMaxBytes = uintmax_t{64} << 20;
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (std::filesystem::exists(st) && !std::filesystem::is_regular_file(st))
    throw IOError(fmt::format("[config] cannot read '{}': {}", path,
                              std::filesystem::is_directory(st) ? "it is a directory" : "not a regular file"));
  if (std::filesystem::exists(st) && std::filesystem::file_size(path, ec) > kMaxBytes)
    throw IOError(fmt::format("[config] '{}' is larger than {} bytes: not a config", path, kMaxBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError(fmt::format("[config] cannot open '{}': no such file or not readable", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw IOError(fmt::format("[config] error reading '{}'", path));
  return parse_yaml(text.str(), path);
}

std::string to_yaml_string(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

namespace config_detail {

void read_value(const YAML::Node& node, int64_t& out, const std::string& key, const std::string& where) {
  int64_t v = 0;
  if (!parse_int(scalar(node, key, "an integer", where), v)) wrong_type(node, key, "an integer", where);
  out = v;
}

void read_value(const YAML::Node& node, double& out, const std::string& key, const std::string& where) {
  double v = 0;
  if (!parse_double(scalar(node, key, "a number", where), v)) wrong_type(node, key, "a number", where);
  out = v;
}

void read_value(const YAML::Node& node, bool& out, const std::string& key, const std::string& where) {
  const char* expected = "a boolean (true/false, yes/no, on/off)";
  scalar(node, key, expected, where);
  bool v = false;
  if (!YAML::convert<bool>::decode(node, v)) wrong_type(node, key, expected, where);
  out = v;
}

void read_value(const YAML::Node& node, std::string& out, const std::string& key, const std::string& where) {
  out = scalar(node, key, "a string", where);
}

// Lists: a sequence whose elements convert like the scalar fields (each error names the
// element as key[i] with its own position).
template <typename T> void read_list(const YAML::Node& node, std::vector<T>& out, const std::string& key,
                                     const char* expected, const std::string& where) {
  if (!node.IsSequence()) wrong_type(node, key, expected, where);
  std::vector<T> v(node.size());
  for (size_t i = 0; i < node.size(); ++i) read_value(node[i], v[i], fmt::format("{}[{}]", key, i), where);
  out = std::move(v);
}

void read_value(const YAML::Node& node, std::vector<std::string>& out, const std::string& key,
                const std::string& where) {
  read_list(node, out, key, "a list of strings", where);
}

void read_value(const YAML::Node& node, std::vector<int64_t>& out, const std::string& key, const std::string& where) {
  read_list(node, out, key, "a list of integers", where);
}

YAML::Node write_value(int64_t v) { return YAML::Node(v); }

YAML::Node write_value(double v) {
  // Shortest text that reads back to the same double; ".0" keeps integral values floats to
  // YAML readers; inf and nan in YAML's spelling.
  if (std::isnan(v)) return YAML::Node(std::string(".nan"));
  if (std::isinf(v)) return YAML::Node(std::string(v > 0 ? ".inf" : "-.inf"));
  // YAML 1.1 readers (PyYAML) read "1e-06" as a string: the mantissa needs a dot and the
  // exponent a sign, so 1e-06 is written 1.0e-06.
  const std::string s = fmt::format("{}", v);
  const size_t e = s.find('e');
  if (e == std::string::npos) return YAML::Node(s.find('.') == std::string::npos ? s + ".0" : s);
  std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
  if (mantissa.find('.') == std::string::npos) mantissa += ".0";
  if (exponent[0] != '-' && exponent[0] != '+') exponent = "+" + exponent;
  return YAML::Node(mantissa + "e" + exponent);
}

YAML::Node write_value(bool v) { return YAML::Node(v); }

YAML::Node write_value(const std::string& v) {
  YAML::Node node(v);
  // A string that would read as a bool or a number ("true", "123") gets an explicit string tag,
  // so that other YAML tools keep it a string (yaml-cpp's emitter quotes only null-like ones).
  bool b = false;
  int64_t i = 0;
  double d = 0;
  if (YAML::convert<bool>::decode(node, b) || parse_int(v, i) || parse_double(v, d))
    node.SetTag("tag:yaml.org,2002:str");
  return node;
}

template <typename T> YAML::Node write_list(const std::vector<T>& v) {
  YAML::Node node(YAML::NodeType::Sequence);
  for (const T& x : v) node.push_back(write_value(x));
  node.SetStyle(YAML::EmitterStyle::Flow);
  return node;
}

YAML::Node write_value(const std::vector<std::string>& v) { return write_list(v); }
YAML::Node write_value(const std::vector<int64_t>& v) { return write_list(v); }

bool check_section(const YAML::Node& map, const std::string& where) {
  if (!map.IsDefined() || map.IsNull()) return false;
  if (!map.IsMap())
    throw ValueError(
        fmt::format("[config] {}: expected a map of key: value, got {}", at(where, map.Mark()), describe(map)));
  return true;
}

std::string check_key(const YAML::Node& key, const std::vector<std::string>& valid, std::vector<std::string>& seen,
                      const std::string& where) {
  if (!key.IsScalar())
    throw ValueError(fmt::format("[config] {}: keys must be names, got {}", at(where, key.Mark()), describe(key)));
  const std::string& name = key.Scalar();
  if (!contains(valid, name))
    throw ValueError(fmt::format("[config] {}: unknown key '{}'; valid keys: {}", at(where, key.Mark()), name,
                                 fmt::join(valid, ", ")));
  if (contains(seen, name))
    throw ValueError(fmt::format("[config] {}: key '{}' is given twice", at(where, key.Mark()), name));
  seen.push_back(name);
  return name;
}

bool contains(const std::vector<std::string>& keys, const std::string& key) {
  for (const auto& k : keys)
    if (k == key) return true;
  return false;
}

}  // namespace config_detail

FieldValue field_value_from_text(const FieldInfo& info, const std::string& text, const std::string& where) {
  const YAML::Node node(text);
  if (info.type == "bool") {
    bool v = false;
    config_detail::read_value(node, v, info.name, where);
    return v;
  }
  if (info.type == "int") {
    int64_t v = 0;
    config_detail::read_value(node, v, info.name, where);
    return v;
  }
  if (info.type == "float") {
    double v = 0;
    config_detail::read_value(node, v, info.name, where);
    return v;
  }
  LNX_CHECK(info.type == "string", ValueError, "[config] {}: '{}' is a {}: set it in a config file", where, info.name,
            info.type);
  return text;
}

}  // namespace lnx::core
