// Template values: Python's truthiness, str/repr, equality and ordering, and json.dumps.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "data/chat_template_internal.h"
#include "data/unicode.h"

namespace lnx::data::jinja {

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(const std::string& key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

Value make_list(std::vector<Value> items, bool tuple) {
  auto l = std::make_shared<List>();
  l->items = std::move(items);
  l->tuple = tuple;
  return Value(std::move(l));
}

Value make_dict(std::vector<std::pair<std::string, Value>> items) {
  auto d = std::make_shared<Dict>();
  d->items = std::move(items);
  return Value(std::move(d));
}

Value make_function(std::string name, std::function<Value(const Args&, const Kwargs&)> call) {
  return Value(std::make_shared<Function>(Function{std::move(name), std::move(call)}));
}

void fail(const std::string& message) { throw Error(message); }

std::string type_name(const Value& value) {
  if (value.is_undefined()) return "undefined";
  if (value.is_none()) return "NoneType";
  if (value.is_bool()) return "bool";
  if (value.is_int()) return "int";
  if (value.is_float()) return "float";
  if (value.is_string()) return "str";
  if (value.is_list()) return value.list().tuple ? "tuple" : "list";
  if (value.is_dict()) return value.dict().is_namespace ? "Namespace" : "dict";
  return "function";
}

bool truthy(const Value& value) {
  if (value.is_undefined() || value.is_none()) return false;
  if (value.is_bool()) return std::get<bool>(value.v);
  if (value.is_int()) return std::get<int64_t>(value.v) != 0;
  if (value.is_float()) return std::get<double>(value.v) != 0.0;
  if (value.is_string()) return !value.str().empty();
  if (value.is_list()) return !value.list().items.empty();
  if (value.is_dict()) return value.dict().is_namespace || !value.dict().items.empty();
  return true;
}

bool is_python_space(char32_t cp) {
  return (cp >= 0x1C && cp <= 0x1F) || (cp < 0x110000 && char_class(cp) == CharClass::Whitespace);
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: positional for exponents -4..15,
  // scientific (at least two exponent digits, no ".0" after a single digit) otherwise.
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  const std::string s(buf, end);
  const size_t e_pos = s.find('e');
  std::string mantissa = s.substr(0, e_pos);
  const int exponent = std::stoi(s.substr(e_pos + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (const char c : mantissa)
    if (c != '.') digits.push_back(c);
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out += digits + std::string(static_cast<size_t>(exponent) + 1 - digits.size(), '0') + ".0";
    } else {
      out +=
          digits.substr(0, static_cast<size_t>(exponent) + 1) + "." + digits.substr(static_cast<size_t>(exponent) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out.push_back('.');
    out.append(digits, 1, std::string::npos);
  }
  out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out;
}

namespace {

// Characters Python's repr escapes although they are not ASCII controls (str.isprintable is
// false): the non-ASCII spaces, line/paragraph separators and the common format characters.
bool python_unprintable(char32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return true;
  if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
      (cp >= 0x205F && cp <= 0x2064) || cp == 0x3000 || cp == 0xFEFF || cp == 0x061C || cp == 0x180E)
    return true;
  return (cp >= 0xE000 && cp <= 0xF8FF) || (cp >= 0xFFF9 && cp <= 0xFFFB);
}

std::string string_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (size_t pos = 0; pos < s.size();) {
    const DecodedChar c = decode_utf8(s, pos);
    const char32_t cp = c.code_point;
    if (!c.valid) {
      out += s.substr(pos, 1);
    } else if (cp == '\\' || cp == static_cast<char32_t>(quote)) {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (python_unprintable(cp)) {
      out += cp <= 0xFF ? fmt::format("\\x{:02x}", static_cast<uint32_t>(cp))
                        : fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
    } else {
      out += s.substr(pos, c.length);
    }
    pos += c.length;
  }
  out += quote;
  return out;
}

std::string sequence_str(const List& l) {
  std::string out = l.tuple ? "(" : "[";
  for (size_t i = 0; i < l.items.size(); ++i) out += (i ? ", " : "") + to_repr(l.items[i]);
  if (l.tuple && l.items.size() == 1) out += ",";
  return out + (l.tuple ? ")" : "]");
}

std::string dict_str(const Dict& d) {
  std::string out = "{";
  for (size_t i = 0; i < d.items.size(); ++i)
    out += (i ? ", " : "") + string_repr(d.items[i].first) + ": " + to_repr(d.items[i].second);
  out += "}";
  return d.is_namespace ? "<Namespace " + out + ">" : out;
}

double as_double(const Value& v) {
  if (v.is_bool()) return std::get<bool>(v.v) ? 1.0 : 0.0;
  if (v.is_int()) return static_cast<double>(std::get<int64_t>(v.v));
  return std::get<double>(v.v);
}

}  // namespace

std::string to_str(const Value& value) {
  if (value.is_undefined()) return "";
  if (value.is_string()) return value.str();
  return to_repr(value);
}

std::string to_repr(const Value& value) {
  if (value.is_undefined()) return "";
  if (value.is_none()) return "None";
  if (value.is_bool()) return std::get<bool>(value.v) ? "True" : "False";
  if (value.is_int()) return std::to_string(std::get<int64_t>(value.v));
  if (value.is_float()) return python_float_repr(std::get<double>(value.v));
  if (value.is_string()) return string_repr(value.str());
  if (value.is_list()) return sequence_str(value.list());
  if (value.is_dict()) return dict_str(value.dict());
  return "<function " + value.function().name + ">";
}

bool equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if ((a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool())) return number_as_int(a) == number_as_int(b);
    return as_double(a) == as_double(b);
  }
  if (a.v.index() != b.v.index()) return false;
  if (a.is_undefined() || a.is_none()) return true;
  if (a.is_string()) return a.str() == b.str();
  if (a.is_list()) {
    const List &x = a.list(), &y = b.list();
    if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
    for (size_t i = 0; i < x.items.size(); ++i)
      if (!equal(x.items[i], y.items[i])) return false;
    return true;
  }
  if (a.is_dict()) {
    const Dict &x = a.dict(), &y = b.dict();
    if (&x == &y) return true;
    if (x.is_namespace || y.is_namespace || x.items.size() != y.items.size()) return false;
    for (const auto& [k, v] : x.items) {
      const Value* other = y.find(k);
      if (other == nullptr || !equal(v, *other)) return false;
    }
    return true;
  }
  return &a.function() == &b.function();
}

std::optional<int> compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if ((a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool())) {
      const int64_t x = number_as_int(a), y = number_as_int(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    const double x = as_double(a), y = as_double(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.str().compare(b.str());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.list().tuple == b.list().tuple) {
    const auto &x = a.list().items, &y = b.list().items;
    for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
      if (equal(x[i], y[i])) continue;
      return compare(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  return std::nullopt;
}

int64_t number_as_int(const Value& v) {
  if (v.is_bool()) return std::get<bool>(v.v) ? 1 : 0;
  if (v.is_int()) return std::get<int64_t>(v.v);
  return static_cast<int64_t>(std::get<double>(v.v));
}

double number_as_double(const Value& v) { return as_double(v); }

Value from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return NoneValue{};
    case nlohmann::ordered_json::value_t::boolean:
      return json.get<bool>();
    case nlohmann::ordered_json::value_t::number_integer:
      return json.get<int64_t>();
    case nlohmann::ordered_json::value_t::number_unsigned:
      return static_cast<int64_t>(json.get<uint64_t>());
    case nlohmann::ordered_json::value_t::number_float:
      return json.get<double>();
    case nlohmann::ordered_json::value_t::string:
      return json.get<std::string>();
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& item : json) items.push_back(from_json(item));
      return make_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      std::vector<std::pair<std::string, Value>> items;
      for (const auto& [key, item] : json.items()) items.emplace_back(key, from_json(item));
      return make_dict(std::move(items));
    }
    default:
      return Undefined{"a binary JSON value"};
  }
}

namespace {

std::string json_string(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  for (size_t pos = 0; pos < s.size();) {
    const DecodedChar c = decode_utf8(s, pos);
    const char32_t cp = c.code_point;
    if (!c.valid) {
      out += s.substr(pos, 1);
    } else if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\b') {
      out += "\\b";
    } else if (cp == '\f') {
      out += "\\f";
    } else if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
      if (cp >= 0x10000) {
        const char32_t v = cp - 0x10000;
        out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
      }
    } else {
      out += s.substr(pos, c.length);
    }
    pos += c.length;
  }
  return out + "\"";
}

void dump(const Value& v, const JsonFormat& f, int level, std::string& out) {
  if (v.is_none()) {
    out += "null";
  } else if (v.is_bool()) {
    out += std::get<bool>(v.v) ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(std::get<int64_t>(v.v));
  } else if (v.is_float()) {
    const double d = std::get<double>(v.v);
    out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : python_float_repr(d);
  } else if (v.is_string()) {
    out += json_string(v.str(), f.ensure_ascii);
  } else if (v.is_list() || (v.is_dict() && !v.dict().is_namespace)) {
    const bool is_list = v.is_list();
    const size_t n = is_list ? v.list().items.size() : v.dict().items.size();
    out += is_list ? "[" : "{";
    if (n == 0) {
      out += is_list ? "]" : "}";
      return;
    }
    const std::string item_sep = !f.item_separator.empty() ? f.item_separator : (f.indent >= 0 ? "," : ", ");
    const std::string key_sep = !f.key_separator.empty() ? f.key_separator : ": ";
    const auto newline = [&](int lvl) {
      if (f.indent < 0) return;
      out.push_back('\n');
      out.append(static_cast<size_t>(f.indent * lvl), ' ');
    };
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    if (!is_list && f.sort_keys) {
      const auto& items = v.dict().items;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return items[a].first < items[b].first; });
    }
    for (size_t k = 0; k < n; ++k) {
      if (k > 0) out += item_sep;
      newline(level + 1);
      if (is_list) {
        dump(v.list().items[order[k]], f, level + 1, out);
      } else {
        const auto& [key, item] = v.dict().items[order[k]];
        out += json_string(key, f.ensure_ascii) + key_sep;
        dump(item, f, level + 1, out);
      }
    }
    newline(level);
    out += is_list ? "]" : "}";
  } else {
    fail(fmt::format("Object of type {} is not JSON serializable", type_name(v)));
  }
}

}  // namespace

std::string to_json_text(const Value& value, const JsonFormat& format) {
  std::string out;
  dump(value, format, 0, out);
  return out;
}

}  // namespace lnx::data::jinja
