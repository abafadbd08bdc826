// The Jinja subset of chat templates (internal header; the public API is
// data/chat_template.h): values, the syntax tree, the parser and the renderer.
//
// Values follow Python's data model as far as templates can see it: undefined, None, bool,
// int (int64), float, str (UTF-8), list and tuple, dict (string keys, insertion order),
// namespace (a dict whose attributes `set` may assign), and functions (globals, bound
// methods, loop.cycle). Lists and dicts are shared and never mutated (templates run in an
// immutable sandbox), except namespaces.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace lnx::data::jinja {

struct Value;
struct List;
struct Dict;
struct Function;

struct Undefined {
  std::string hint;  // what was looked up, for error messages ("'x' is undefined")
};
struct NoneValue {};

struct Value {
  std::variant<Undefined, NoneValue, bool, int64_t, double, std::string, std::shared_ptr<List>, std::shared_ptr<Dict>,
               std::shared_ptr<Function>>
      v;

  Value() : v(Undefined{}) {}
  Value(Undefined u) : v(std::move(u)) {}
  Value(NoneValue n) : v(n) {}
  Value(bool b) : v(b) {}
  Value(int64_t i) : v(i) {}
  Value(int i) : v(static_cast<int64_t>(i)) {}
  Value(double d) : v(d) {}
  Value(std::string s) : v(std::move(s)) {}
  Value(const char* s) : v(std::string(s)) {}
  Value(std::shared_ptr<List> l) : v(std::move(l)) {}
  Value(std::shared_ptr<Dict> d) : v(std::move(d)) {}
  Value(std::shared_ptr<Function> f) : v(std::move(f)) {}

  bool is_undefined() const { return std::holds_alternative<Undefined>(v); }
  bool is_none() const { return std::holds_alternative<NoneValue>(v); }
  bool is_bool() const { return std::holds_alternative<bool>(v); }
  bool is_int() const { return std::holds_alternative<int64_t>(v); }
  bool is_float() const { return std::holds_alternative<double>(v); }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python: bool is an int
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<List>>(v); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<Dict>>(v); }
  bool is_function() const { return std::holds_alternative<std::shared_ptr<Function>>(v); }

  const std::string& str() const { return std::get<std::string>(v); }
  const List& list() const { return *std::get<std::shared_ptr<List>>(v); }
  Dict& dict() const { return *std::get<std::shared_ptr<Dict>>(v); }
  const Function& function() const { return *std::get<std::shared_ptr<Function>>(v); }
};

struct List {
  std::vector<Value> items;
  bool tuple = false;  // printed as (a, b); equal only to tuples
};

struct Dict {
  std::vector<std::pair<std::string, Value>> items;  // insertion order
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;

struct Function {
  std::string name;
  std::function<Value(const Args&, const Kwargs&)> call;
};

// An error while evaluating; the renderer adds the position of the construct.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void fail(const std::string& message);

Value make_list(std::vector<Value> items, bool tuple = false);
Value make_dict(std::vector<std::pair<std::string, Value>> items = {});
Value make_function(std::string name, std::function<Value(const Args&, const Kwargs&)> call);

// Python's type name of a value ("str", "int", "list", "dict", "NoneType", "undefined", ...).
std::string type_name(const Value& value);
bool truthy(const Value& value);
// str(value) as Python prints it (undefined prints nothing); repr(value).
std::string to_str(const Value& value);
std::string to_repr(const Value& value);
std::string python_float_repr(double d);
// Python ==, and <; compare throws (via fail) for unordered types.
bool equal(const Value& a, const Value& b);
// -1, 0, 1; nullopt when the types have no order.
std::optional<int> compare(const Value& a, const Value& b);
// A number (bool, int or float) as int64 (floats truncated) or as double.
int64_t number_as_int(const Value& v);
double number_as_double(const Value& v);

// JSON in and out. to_json_text is Python's json.dumps(value, ensure_ascii, indent,
// separators, sort_keys) as transformers' tojson filter calls it; indent < 0 means None.
Value from_json(const nlohmann::ordered_json& json);
struct JsonFormat {
  int indent = -1;
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_separator, key_separator;  // empty: Python's defaults for the indent
};
std::string to_json_text(const Value& value, const JsonFormat& format);

// ---- syntax tree ----

struct Position {
  int line = 1;
  int column = 1;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct Expr {
  enum class Kind {
    Literal,    // value
    Name,       // name
    List,       // items (tuple: is_tuple)
    Dict,       // keys[i] -> items[i]
    Attr,       // items[0].name
    Subscript,  // items[0][items[1]]
    Slice,      // items[0][items[1]:items[2]:items[3]] (null parts absent)
    Call,       // items[0](args)
    Filter,     // items[0] | name(args)
    Test,       // items[0] is [not] name(args)
    Unary,      // op items[0]: "not", "-", "+"
    Binary,     // items[0] op items[1]
    Cond,       // items[0] if items[1] else items[2] (items[2] may be null)
  };
  Kind kind;
  Position pos;
  Value value;
  std::string name;      // Name, Attr, Filter, Test; the operator of Unary/Binary
  bool negated = false;  // Test
  bool is_tuple = false;
  std::vector<ExprPtr> items;
  std::vector<ExprPtr> keys;  // Dict
  CallArgs args;              // Call, Filter, Test
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    Text,    // text
    Output,  // {{ expr }}
    If,      // conditions[i] -> bodies[i]; else_body
    For,     // for targets in expr [if condition]: body; else_body
    Set,     // set targets (or target.attribute) = expr
    Break,
    Continue,
    Generation,  // {% generation %} body {% endgeneration %}: rendered as is
  };
  Kind kind;
  Position pos;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;  // For's filter
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  std::vector<std::string> targets;
  std::string attribute;  // Set on a namespace: targets[0].attribute
};

// Parses a template (newlines normalized, one trailing newline dropped, trim_blocks and
// lstrip_blocks on, as transformers sets up jinja2). Throws ValueError naming line and column.
Body parse_template(std::string_view source);

// The filters and tests the renderer implements (the parser rejects others).
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

// Renders the tree with the variables (a JSON object) plus the globals (range, dict,
// namespace, raise_exception, strftime_now).
std::string render_template(const Body& body, const nlohmann::ordered_json& variables);

// Python's str.isspace for one code point.
bool is_python_space(char32_t cp);

}  // namespace lnx::data::jinja
