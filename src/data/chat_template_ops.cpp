// The operations on template values (chat_template_ops_internal.h): strings as code points with
// Python's str semantics, argument helpers, jinja2's getattr/getitem, the str and dict methods
// and the operators.
#include "data/chat_template_ops_internal.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "data/unicode.h"
#include "tensor/error.h"

namespace lnx::data::jinja::ops {

// ---- strings as code points ----

std::u32string to_u32(std::string_view s) {
  std::u32string out;
  for (size_t pos = 0; pos < s.size();) {
    const DecodedChar c = decode_utf8(s, pos);
    // An invalid byte is carried as a code point outside Unicode and written back as is.
    out.push_back(c.valid ? c.code_point : 0x110000 + static_cast<uint8_t>(s[pos]));
    pos += c.length;
  }
  return out;
}

std::string from_u32(std::u32string_view s) {
  std::string out;
  for (const char32_t c : s) {
    if (c >= 0x110000)
      out.push_back(static_cast<char>(c - 0x110000));
    else
      append_utf8(out, c);
  }
  return out;
}

bool is_space32(char32_t c) { return c < 0x110000 && is_python_space(c); }

char32_t ascii_upper(char32_t c) { return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c; }
char32_t ascii_lower(char32_t c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }
bool is_alpha32(char32_t c) { return c < 0x110000 && char_class(c) == CharClass::Letter; }

std::string map_chars(const std::string& s, char32_t (*f)(char32_t)) {
  std::u32string u = to_u32(s);
  for (char32_t& c : u) c = f(c);
  return from_u32(u);
}

// Python's str.strip / lstrip / rstrip: chars == nullptr strips whitespace.
std::string strip(const std::string& s, const std::string* chars, bool left, bool right) {
  const std::u32string u = to_u32(s);
  const std::u32string set = chars ? to_u32(*chars) : std::u32string();
  const auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space32(c); };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strippable(u[b])) ++b;
  if (right)
    while (e > b && strippable(u[e - 1])) --e;
  return from_u32(u.substr(b, e - b));
}

// Python's str.split / rsplit.
std::vector<Value> split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep.is_none() || sep.is_undefined()) {
    std::u32string u = to_u32(s);
    if (from_right) std::reverse(u.begin(), u.end());
    size_t i = 0;
    while (true) {
      while (i < u.size() && is_space32(u[i])) ++i;
      if (i >= u.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        size_t e = u.size();
        while (e > i && is_space32(u[e - 1])) --e;
        parts.push_back(from_u32(u.substr(i, e - i)));
        break;
      }
      size_t j = i;
      while (j < u.size() && !is_space32(u[j])) ++j;
      parts.push_back(from_u32(u.substr(i, j - i)));
      i = j;
    }
    if (from_right) {
      for (std::string& p : parts) {
        std::u32string x = to_u32(p);
        std::reverse(x.begin(), x.end());
        p = from_u32(x);
      }
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    if (!sep.is_string()) fail(fmt::format("split: the separator must be a string, not {}", type_name(sep)));
    const std::string& d = sep.str();
    if (d.empty()) fail("split: empty separator");
    if (!from_right) {
      size_t start = 0;
      while (true) {
        const size_t at = s.find(d, start);
        if (at == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(start));
          break;
        }
        parts.push_back(s.substr(start, at - start));
        start = at + d.size();
      }
    } else {
      size_t end = s.size();
      while (true) {
        const size_t at = end >= d.size() ? s.rfind(d, end - d.size()) : std::string::npos;
        if (at == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(0, end));
          break;
        }
        parts.push_back(s.substr(at + d.size(), end - at - d.size()));
        end = at;
      }
      std::reverse(parts.begin(), parts.end());
    }
  }
  std::vector<Value> out;
  for (std::string& p : parts) out.emplace_back(std::move(p));
  return out;
}

std::string replace_all(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
  if (old.empty()) {  // Python inserts `with` around every character
    const std::u32string u = to_u32(s);
    std::string out;
    int64_t n = 0;
    for (size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || n < count) {
        out += with;
        ++n;
      }
      if (i < u.size()) out += from_u32(u.substr(i, 1));
    }
    return out;
  }
  std::string out;
  size_t start = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    const size_t at = s.find(old, start);
    if (at == std::string::npos) break;
    out += s.substr(start, at - start) + with;
    start = at + old.size();
    ++n;
  }
  return out + s.substr(start);
}

// jinja2's title filter: each word (split at whitespace, '-', '(', '{', '[', '<') capitalized.
std::string title_words(const std::string& s, bool python_method) {
  std::u32string u = to_u32(s);
  bool start = true;
  for (char32_t& c : u) {
    const bool boundary =
        python_method ? !is_alpha32(c) : (is_space32(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<');
    if (boundary) {
      start = true;
      continue;
    }
    c = start ? ascii_upper(c) : ascii_lower(c);
    start = false;
  }
  return from_u32(u);
}

// Python's str.splitlines(): lines without their ends, at \n, \r\n, \r, \v, \f, \x1c-\x1e,
// U+0085, U+2028 and U+2029.
std::vector<std::string> split_lines(const std::string& s) {
  const std::u32string u = to_u32(s);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    const char32_t c = u[i];
    if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
        c == 0x2029) {
      lines.push_back(from_u32(u.substr(start, i - start)));
      if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < u.size()) lines.push_back(from_u32(u.substr(start)));
  return lines;
}

std::string capitalize(const std::string& s) {
  std::u32string u = to_u32(s);
  for (size_t i = 0; i < u.size(); ++i) u[i] = i == 0 ? ascii_upper(u[i]) : ascii_lower(u[i]);
  return from_u32(u);
}

// ---- argument helpers ----

const Value* find_kw(const Kwargs& kwargs, std::string_view name) {
  for (const auto& [k, v] : kwargs)
    if (k == name) return &v;
  return nullptr;
}

// Argument `index` (positional) or `name` (keyword), or fallback.
Value arg(const Args& args, const Kwargs& kwargs, size_t index, std::string_view name, Value fallback) {
  if (index < args.size()) return args[index];
  if (const Value* v = find_kw(kwargs, name)) return *v;
  return fallback;
}

void check_arity(const std::string& what, const Args& args, const Kwargs& kwargs, size_t max_positional,
                 std::initializer_list<std::string_view> keywords) {
  if (args.size() > max_positional)
    fail(fmt::format("{} takes at most {} positional arguments ({} given)", what, max_positional, args.size()));
  for (const auto& [k, v] : kwargs)
    if (std::find(keywords.begin(), keywords.end(), k) == keywords.end())
      fail(fmt::format("{} got an unexpected keyword argument '{}'", what, k));
}

int64_t as_int(const Value& v, const std::string& what) {
  if (v.is_int() || v.is_bool()) return number_as_int(v);
  fail(fmt::format("{} must be an integer, not {}", what, type_name(v)));
}

const std::string& as_string(const Value& v, const std::string& what) {
  if (!v.is_string()) fail(fmt::format("{} must be a string, not {}", what, type_name(v)));
  return v.str();
}

// The items of an iterable: list/tuple items, dict keys, string characters; undefined is empty.
std::vector<Value> iterate(const Value& v) {
  if (v.is_undefined()) return {};
  if (v.is_list()) return v.list().items;
  if (v.is_dict() && !v.dict().is_namespace) {
    std::vector<Value> keys;
    for (const auto& [k, item] : v.dict().items) keys.emplace_back(k);
    return keys;
  }
  if (v.is_string()) {
    std::vector<Value> chars;
    for (const char32_t c : to_u32(v.str())) chars.emplace_back(from_u32(std::u32string(1, c)));
    return chars;
  }
  fail(fmt::format("'{}' object is not iterable", type_name(v)));
}

int64_t length(const Value& v) {
  if (v.is_undefined()) return 0;
  if (v.is_string()) return static_cast<int64_t>(to_u32(v.str()).size());
  if (v.is_list()) return static_cast<int64_t>(v.list().items.size());
  if (v.is_dict() && !v.dict().is_namespace) return static_cast<int64_t>(v.dict().items.size());
  fail(fmt::format("object of type '{}' has no len()", type_name(v)));
}

std::string undefined_message(const Value& v) {
  const std::string& hint = std::get<Undefined>(v.v).hint;
  return hint.empty() ? "the value is undefined" : hint + " is undefined";
}

// ---- attribute and item access (jinja2's getattr / getitem) ----

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail(fmt::format("{} (reading its attribute '{}')", undefined_message(obj), name));
  if (obj.is_dict()) {
    const auto& d = std::get<std::shared_ptr<Dict>>(obj.v);
    if (!d->is_namespace) {
      if (Value m = dict_method(d, name); !m.is_undefined()) return m;
    }
    if (const Value* v = d->find(name)) return *v;
    return Undefined{fmt::format("'{}' (a key of a {})", name, d->is_namespace ? "namespace" : "dict")};
  }
  if (obj.is_string()) {
    if (Value m = string_method(obj.str(), name); !m.is_undefined()) return m;
  }
  return Undefined{fmt::format("'{}' (an attribute of a {})", name, type_name(obj))};
}

// Python's slice.indices for a sequence of length n.
std::vector<size_t> slice_indices(int64_t n, const Value& start_v, const Value& stop_v, const Value& step_v) {
  const bool has_step = !(step_v.is_none() || step_v.is_undefined());
  const int64_t step = has_step ? as_int(step_v, "a slice step") : 1;
  if (step == 0) fail("slice step cannot be zero");
  const auto bound = [&](const Value& v, int64_t dflt) -> int64_t {
    if (v.is_none() || v.is_undefined()) return dflt;
    int64_t i = as_int(v, "a slice index");
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t start = bound(start_v, step > 0 ? 0 : n - 1), stop = bound(stop_v, step > 0 ? n : -1);
  std::vector<size_t> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(static_cast<size_t>(i));
  return out;
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail(fmt::format("{} (reading item {})", undefined_message(obj), to_repr(key)));
  if (obj.is_dict() && !obj.dict().is_namespace) {
    if (key.is_string()) {
      if (const Value* v = obj.dict().find(key.str())) return *v;
      if (Value m = dict_method(std::get<std::shared_ptr<Dict>>(obj.v), key.str()); !m.is_undefined()) return m;
    }
    return Undefined{fmt::format("{} (a key of a dict)", to_repr(key))};
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = number_as_int(key);
    if (obj.is_list()) {
      const auto& items = obj.list().items;
      if (i < 0) i += static_cast<int64_t>(items.size());
      if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
      return Undefined{fmt::format("index {} (of a {} of {})", number_as_int(key), type_name(obj), items.size())};
    }
    const std::u32string u = to_u32(obj.str());
    if (i < 0) i += static_cast<int64_t>(u.size());
    if (i >= 0 && i < static_cast<int64_t>(u.size())) return from_u32(u.substr(static_cast<size_t>(i), 1));
    return Undefined{fmt::format("index {} (of a str of {})", number_as_int(key), u.size())};
  }
  if (key.is_string()) return get_attr(obj, key.str());
  return Undefined{fmt::format("item {} (of a {})", to_repr(key), type_name(obj))};
}

// ---- methods ----

Value string_method(const std::string& s, const std::string& name) {
  const auto method = [&](auto body) { return make_function("str." + name, body); };
  if (name == "startswith" || name == "endswith") {
    const bool starts = name == "startswith";
    return method([s, starts](const Args& a, const Kwargs& k) -> Value {
      check_arity(starts ? "startswith" : "endswith", a, k, 1, {});
      if (a.empty()) fail("startswith/endswith needs an argument");
      std::vector<Value> options = a[0].is_list() ? a[0].list().items : std::vector<Value>{a[0]};
      for (const Value& o : options) {
        const std::string& p = as_string(o, "a startswith/endswith argument");
        if (p.size() <= s.size() &&
            (starts ? s.compare(0, p.size(), p) : s.compare(s.size() - p.size(), p.size(), p)) == 0)
          return true;
      }
      return false;
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool left = name != "rstrip", right = name != "lstrip";
    return method([s, left, right](const Args& a, const Kwargs& k) -> Value {
      check_arity("strip", a, k, 1, {});
      if (a.empty() || a[0].is_none()) return strip(s, nullptr, left, right);
      return strip(s, &as_string(a[0], "strip's argument"), left, right);
    });
  }
  if (name == "split" || name == "rsplit") {
    const bool right = name == "rsplit";
    return method([s, right](const Args& a, const Kwargs& k) -> Value {
      check_arity("split", a, k, 2, {"sep", "maxsplit"});
      return make_list(
          split(s, arg(a, k, 0, "sep", NoneValue{}), as_int(arg(a, k, 1, "maxsplit", -1), "maxsplit"), right));
    });
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    return method([s, name](const Args& a, const Kwargs& k) -> Value {
      check_arity(name, a, k, 0, {});
      if (name == "upper") return map_chars(s, ascii_upper);
      if (name == "lower") return map_chars(s, ascii_lower);
      if (name == "title") return title_words(s, true);
      return capitalize(s);
    });
  }
  if (name == "replace") {
    return method([s](const Args& a, const Kwargs& k) -> Value {
      check_arity("replace", a, k, 3, {});
      if (a.size() < 2) fail("replace needs two arguments");
      return replace_all(s, as_string(a[0], "replace's old"), as_string(a[1], "replace's new"),
                         a.size() > 2 ? as_int(a[2], "replace's count") : -1);
    });
  }
  if (name == "find" || name == "count") {
    const bool find = name == "find";
    return method([s, find](const Args& a, const Kwargs& k) -> Value {
      check_arity(find ? "find" : "count", a, k, 1, {});
      if (a.empty()) fail("find/count needs an argument");
      const std::string& sub = as_string(a[0], "the substring");
      if (find) {
        const size_t at = s.find(sub);
        return at == std::string::npos ? int64_t{-1} : static_cast<int64_t>(to_u32(s.substr(0, at)).size());
      }
      if (sub.empty()) return static_cast<int64_t>(to_u32(s).size() + 1);
      int64_t n = 0;
      for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
      return n;
    });
  }
  if (name == "join") {
    return method([s](const Args& a, const Kwargs& k) -> Value {
      check_arity("join", a, k, 1, {});
      if (a.empty()) fail("join needs an argument");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(a[0])) {
        if (!first) out += s;
        out += as_string(item, "an item joined by str.join");
        first = false;
      }
      return out;
    });
  }
  if (name == "splitlines") {
    return method([s](const Args& a, const Kwargs& k) -> Value {
      check_arity("splitlines", a, k, 0, {});
      std::vector<Value> lines;
      for (std::string& line : split_lines(s)) lines.emplace_back(std::move(line));
      return make_list(std::move(lines));
    });
  }
  if (name == "format") {
    return method([s](const Args& a, const Kwargs& k) -> Value {
      std::string out;
      size_t auto_index = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if ((c == '{' || c == '}') && i + 1 < s.size() && s[i + 1] == c) {
          out.push_back(c);
          ++i;
          continue;
        }
        if (c == '}') fail("format: single '}' in the format string");
        if (c != '{') {
          out.push_back(c);
          continue;
        }
        const size_t close = s.find('}', i);
        if (close == std::string::npos) fail("format: single '{' in the format string");
        const std::string field = s.substr(i + 1, close - i - 1);
        if (field.find_first_of(":!.[") != std::string::npos)
          fail(fmt::format("format: the field '{{{}}}' is not supported (only {{}}, {{0}}, {{name}})", field));
        Value v;
        if (field.empty()) {
          if (auto_index >= a.size()) fail("format: not enough arguments");
          v = a[auto_index++];
        } else if (std::all_of(field.begin(), field.end(),
                               [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
          const size_t idx = std::stoul(field);
          if (idx >= a.size()) fail("format: not enough arguments");
          v = a[idx];
        } else {
          const Value* kv = find_kw(k, field);
          if (kv == nullptr) fail(fmt::format("format: no argument named '{}'", field));
          v = *kv;
        }
        out += to_str(v);
        i = close;
      }
      return out;
    });
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "isupper" ||
      name == "islower") {
    return method([s, name](const Args& a, const Kwargs& k) -> Value {
      check_arity(name, a, k, 0, {});
      const std::u32string u = to_u32(s);
      if (u.empty()) return false;
      if (name == "isupper" || name == "islower") {
        bool cased = false;
        for (const char32_t c : u) {
          if (ascii_upper(c) != ascii_lower(c)) {
            cased = true;
            if ((name == "isupper") != (c == ascii_upper(c))) return false;
          }
        }
        return cased;
      }
      return std::all_of(u.begin(), u.end(), [&](char32_t c) {
        const bool digit = c < 0x110000 && char_class(c) == CharClass::Number;
        if (name == "isdigit") return digit;
        if (name == "isalpha") return is_alpha32(c);
        if (name == "isalnum") return digit || is_alpha32(c);
        return is_space32(c);
      });
    });
  }
  return Undefined{};
}

Value dict_method(const std::shared_ptr<Dict>& d, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return make_function("dict." + name, [d, name](const Args& a, const Kwargs& k) -> Value {
      check_arity(name, a, k, 0, {});
      std::vector<Value> out;
      for (const auto& [key, v] : d->items) {
        if (name == "items")
          out.push_back(make_list({Value(key), v}, true));
        else
          out.push_back(name == "keys" ? Value(key) : v);
      }
      return make_list(std::move(out));
    });
  }
  if (name == "get") {
    return make_function("dict.get", [d](const Args& a, const Kwargs& k) -> Value {
      check_arity("get", a, k, 2, {});
      if (a.empty()) fail("get needs a key");
      if (a[0].is_string())
        if (const Value* v = d->find(a[0].str())) return *v;
      return a.size() > 1 ? a[1] : Value(NoneValue{});
    });
  }
  return Undefined{};
}

// ---- operators ----

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined())
    fail(fmt::format("{} (an operand of '{}')", undefined_message(a.is_undefined() ? a : b), op));
  const auto type_error = [&]() -> Value {
    fail(fmt::format("unsupported operand types for {}: '{}' and '{}'", op, type_name(a), type_name(b)));
  };
  if (op == "+") {
    if (a.is_string() && b.is_string()) return a.str() + b.str();
    if (a.is_list() && b.is_list() && a.list().tuple == b.list().tuple) {
      std::vector<Value> items = a.list().items;
      items.insert(items.end(), b.list().items.begin(), b.list().items.end());
      return make_list(std::move(items), a.list().tuple);
    }
  }
  if (op == "*") {
    const Value* seq = a.is_string() || a.is_list() ? &a : (b.is_string() || b.is_list() ? &b : nullptr);
    const Value* count = seq == &a ? &b : &a;
    if (seq != nullptr && (count->is_int() || count->is_bool())) {
      const int64_t n = std::max<int64_t>(0, number_as_int(*count));
      if (n > kMaxRange / std::max<int64_t>(1, length(*seq))) fail("a repetition this long is refused");
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->str();
        return out;
      }
      std::vector<Value> items;
      for (int64_t i = 0; i < n; ++i) items.insert(items.end(), seq->list().items.begin(), seq->list().items.end());
      return make_list(std::move(items), seq->list().tuple);
    }
  }
  if (op == "%" && a.is_string()) fail("'%' string formatting is not supported (use ~, + or format)");
  if (!a.is_number() || !b.is_number()) return type_error();
  const bool ints = !a.is_float() && !b.is_float();
  if (op == "/") {
    if (number_as_double(b) == 0) fail("division by zero");
    return number_as_double(a) / number_as_double(b);
  }
  if (ints) {
    const int64_t x = number_as_int(a), y = number_as_int(b);
    // Python's integers do not overflow; these are 64-bit, so an overflow is refused.
    int64_t out = 0;
    if (op == "+" && __builtin_add_overflow(x, y, &out)) fail("integer overflow in +");
    if (op == "-" && __builtin_sub_overflow(x, y, &out)) fail("integer overflow in -");
    if (op == "*" && __builtin_mul_overflow(x, y, &out)) fail("integer overflow in *");
    if (op == "+" || op == "-" || op == "*") return out;
    if (op == "//" || op == "%") {
      if (y == 0) fail("integer division or modulo by zero");
      if (y == -1) {  // x / -1 traps for the smallest int64
        if (op == "%") return int64_t{0};
        if (x == std::numeric_limits<int64_t>::min()) fail("integer overflow in //");
        return -x;
      }
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        --q;
        r += y;
      }
      return op == "//" ? q : r;
    }
    if (op == "**") {
      if (y < 0) return std::pow(static_cast<double>(x), static_cast<double>(y));
      int64_t result = 1, base = x;  // by squaring: y may be huge when x is 0, 1 or -1
      for (int64_t e = y; e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(result, base, &result)) fail("integer overflow in **");
        if (e > 1 && __builtin_mul_overflow(base, base, &base)) fail("integer overflow in **");
      }
      return result;
    }
  }
  const double x = number_as_double(a), y = number_as_double(b);
  if (op == "+") return x + y;
  if (op == "-") return x - y;
  if (op == "*") return x * y;
  if (op == "//" || op == "%") {
    if (y == 0) fail("float division or modulo by zero");
    const double q = std::floor(x / y);
    return op == "//" ? q : x - q * y;
  }
  if (op == "**") return std::pow(x, y);
  return type_error();
}

bool contains(const Value& container, const Value& item) {
  if (container.is_undefined()) return false;
  if (container.is_string()) {
    if (!item.is_string())
      fail(fmt::format("'in <string>' requires a string as left operand, not {}", type_name(item)));
    return container.str().find(item.str()) != std::string::npos;
  }
  if (container.is_list()) {
    for (const Value& v : container.list().items)
      if (equal(v, item)) return true;
    return false;
  }
  if (container.is_dict() && !container.dict().is_namespace)
    return item.is_string() && container.dict().find(item.str()) != nullptr;
  fail(fmt::format("argument of type '{}' is not iterable", type_name(container)));
}

}  // namespace lnx::data::jinja::ops
