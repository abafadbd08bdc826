// The renderer of the Jinja subset: scopes (a for-loop iteration is a scope, an if is not),
// expressions with Python's semantics, the filters, tests, string and dict methods and the
// globals transformers gives chat templates (range, dict, namespace, raise_exception,
// strftime_now). Evaluation errors name the construct's line and column.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include "data/chat_template_internal.h"
#include "data/chat_template_ops_internal.h"
#include "data/unicode.h"
#include "tensor/error.h"

namespace lnx::data::jinja {
namespace {

constexpr size_t kMaxOutputBytes = size_t{256} << 20;

// raise_exception(message): passed through without a position.
struct RaisedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using namespace ops;  // the value operations (chat_template_ops_internal.h)

// ---- the renderer ----

struct Scope {
  std::unordered_map<std::string, Value> vars;
  Scope* parent = nullptr;

  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent) {
      const auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

enum class Flow { Normal, Break, Continue };

class Renderer {
 public:
  std::string out;

  Value eval(const Expr& e, Scope& scope) {
    try {
      return eval_inner(e, scope);
    } catch (const Error& err) {
      throw ValueError(fmt::format("[chat_template] line {}, column {}: {}", e.pos.line, e.pos.column, err.what()));
    }
  }

  Flow render(const Body& body, Scope& scope, int loop_depth) {
    for (const NodePtr& n : body) {
      const Flow f = render_node(*n, scope, loop_depth);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

 private:
  void emit(const std::string& text) {
    out += text;
    if (out.size() > kMaxOutputBytes) throw ValueError("[chat_template] the rendering exceeds 256 MiB");
  }

  Flow render_node(const Node& n, Scope& scope, int loop_depth) {
    switch (n.kind) {
      case Node::Kind::Text:
        emit(n.text);
        return Flow::Normal;
      case Node::Kind::Output:
        emit(to_str(eval(*n.expr, scope)));
        return Flow::Normal;
      case Node::Kind::If:
        for (size_t i = 0; i < n.conditions.size(); ++i)
          if (truthy(eval(*n.conditions[i], scope))) return render(n.bodies[i], scope, loop_depth);
        return render(n.else_body, scope, loop_depth);
      case Node::Kind::For:
        return render_for(n, scope, loop_depth);
      case Node::Kind::Set: {
        Value value;
        if (n.expr) {
          value = eval(*n.expr, scope);
        } else {
          Renderer inner;
          Scope block{{}, &scope};
          inner.render(n.body, block, 0);
          value = std::move(inner.out);
        }
        if (!n.attribute.empty()) {
          const Value* ns = scope.find(n.targets[0]);
          if (ns == nullptr || !ns->is_dict() || !ns->dict().is_namespace)
            throw ValueError(
                fmt::format("[chat_template] line {}, column {}: '{}' is not a namespace, so "
                            "'{}.{}' cannot be assigned",
                            n.pos.line, n.pos.column, n.targets[0], n.targets[0], n.attribute));
          ns->dict().set(n.attribute, std::move(value));
          return Flow::Normal;
        }
        assign(n, n.targets, value, scope);
        return Flow::Normal;
      }
      case Node::Kind::Break:
      case Node::Kind::Continue:
        if (loop_depth == 0)
          throw ValueError(fmt::format("[chat_template] line {}, column {}: '{}' outside a for loop", n.pos.line,
                                       n.pos.column, n.kind == Node::Kind::Break ? "break" : "continue"));
        return n.kind == Node::Kind::Break ? Flow::Break : Flow::Continue;
      case Node::Kind::Generation:
        return render(n.body, scope, loop_depth);
    }
    return Flow::Normal;
  }

  void assign(const Node& n, const std::vector<std::string>& targets, const Value& value, Scope& scope) {
    if (targets.size() == 1) {
      scope.vars[targets[0]] = value;
      return;
    }
    std::vector<Value> items;
    try {
      items = iterate(value);
    } catch (const Error& e) {
      throw ValueError(fmt::format("[chat_template] line {}, column {}: {}", n.pos.line, n.pos.column, e.what()));
    }
    if (items.size() != targets.size())
      throw ValueError(fmt::format("[chat_template] line {}, column {}: cannot unpack {} values into {} names",
                                   n.pos.line, n.pos.column, items.size(), targets.size()));
    for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = items[i];
  }

  Flow render_for(const Node& n, Scope& scope, int loop_depth) {
    const Value iterable = eval(*n.expr, scope);
    std::vector<Value> items;
    try {
      if (iterable.is_none()) fail("'NoneType' object is not iterable");
      items = iterate(iterable);
    } catch (const Error& e) {
      throw ValueError(
          fmt::format("[chat_template] line {}, column {}: {}", n.expr->pos.line, n.expr->pos.column, e.what()));
    }
    if (n.condition) {  // `for x in xs if cond`: filtered before the loop (loop.length counts the kept)
      std::vector<Value> kept;
      for (const Value& item : items) {
        Scope probe{{}, &scope};
        assign(n, n.targets, item, probe);
        if (truthy(eval(*n.condition, probe))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return render(n.else_body, scope, loop_depth);
    const int64_t count = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < count; ++i) {
      Scope iteration{{}, &scope};
      assign(n, n.targets, items[static_cast<size_t>(i)], iteration);
      std::vector<std::pair<std::string, Value>> loop = {{"index", i + 1},        {"index0", i},
                                                         {"revindex", count - i}, {"revindex0", count - i - 1},
                                                         {"first", i == 0},       {"last", i == count - 1},
                                                         {"length", count},       {"depth", int64_t{1}},
                                                         {"depth0", int64_t{0}}};
      if (i > 0) loop.emplace_back("previtem", items[static_cast<size_t>(i - 1)]);
      if (i + 1 < count) loop.emplace_back("nextitem", items[static_cast<size_t>(i + 1)]);
      loop.emplace_back("cycle", make_function("loop.cycle", [i](const Args& a, const Kwargs&) -> Value {
                          if (a.empty()) fail("loop.cycle needs at least one argument");
                          return a[static_cast<size_t>(i) % a.size()];
                        }));
      iteration.vars["loop"] = make_dict(std::move(loop));
      const Flow f = render(n.body, iteration, loop_depth + 1);
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  std::pair<Args, Kwargs> eval_args(const CallArgs& call, Scope& scope) {
    Args args;
    Kwargs kwargs;
    for (const ExprPtr& a : call.positional) args.push_back(eval(*a, scope));
    for (const auto& [name, a] : call.keyword) kwargs.emplace_back(name, eval(*a, scope));
    return {std::move(args), std::move(kwargs)};
  }

  Value eval_inner(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::Kind::Literal:
        return e.value;
      case Expr::Kind::Name: {
        const Value* v = scope.find(e.name);
        return v ? *v : Value(Undefined{"'" + e.name + "'"});
      }
      case Expr::Kind::List: {
        std::vector<Value> items;
        for (const ExprPtr& i : e.items) items.push_back(eval(*i, scope));
        return make_list(std::move(items), e.is_tuple);
      }
      case Expr::Kind::Dict: {
        auto d = std::make_shared<Dict>();
        for (size_t i = 0; i < e.keys.size(); ++i) {
          const Value key = eval(*e.keys[i], scope);
          if (!key.is_string()) fail(fmt::format("dict keys must be strings here, not {}", type_name(key)));
          d->set(key.str(), eval(*e.items[i], scope));
        }
        return Value(std::move(d));
      }
      case Expr::Kind::Attr:
        return get_attr(eval(*e.items[0], scope), e.name);
      case Expr::Kind::Subscript:
        return get_item(eval(*e.items[0], scope), eval(*e.items[1], scope));
      case Expr::Kind::Slice: {
        const Value obj = eval(*e.items[0], scope);
        Value parts[3];
        for (int i = 0; i < 3; ++i) parts[i] = e.items[1 + i] ? eval(*e.items[1 + i], scope) : Value(NoneValue{});
        if (obj.is_undefined()) fail(fmt::format("{} (sliced)", undefined_message(obj)));
        if (obj.is_string()) {
          const std::u32string u = to_u32(obj.str());
          std::u32string r;
          for (const size_t i : slice_indices(static_cast<int64_t>(u.size()), parts[0], parts[1], parts[2]))
            r.push_back(u[i]);
          return from_u32(r);
        }
        if (!obj.is_list()) fail(fmt::format("a {} cannot be sliced", type_name(obj)));
        const auto& items = obj.list().items;
        std::vector<Value> r;
        for (const size_t i : slice_indices(static_cast<int64_t>(items.size()), parts[0], parts[1], parts[2]))
          r.push_back(items[i]);
        return make_list(std::move(r), obj.list().tuple);
      }
      case Expr::Kind::Call: {
        const Value callee = eval(*e.items[0], scope);
        auto [args, kwargs] = eval_args(e.args, scope);
        if (callee.is_undefined()) fail(fmt::format("{} (called as a function)", undefined_message(callee)));
        if (!callee.is_function()) fail(fmt::format("'{}' object is not callable", type_name(callee)));
        return callee.function().call(args, kwargs);
      }
      case Expr::Kind::Filter: {
        const Value value = eval(*e.items[0], scope);
        auto [args, kwargs] = eval_args(e.args, scope);
        return apply_filter(e.name, value, args, kwargs);
      }
      case Expr::Kind::Test: {
        const Value value = eval(*e.items[0], scope);
        auto [args, kwargs] = eval_args(e.args, scope);
        const bool r = apply_test(e.name, value, args);
        return e.negated ? !r : r;
      }
      case Expr::Kind::Unary: {
        const Value v = eval(*e.items[0], scope);
        if (e.name == "not") return !truthy(v);
        if (v.is_undefined()) fail(fmt::format("{} (an operand of unary '{}')", undefined_message(v), e.name));
        if (!v.is_number()) fail(fmt::format("bad operand type for unary {}: '{}'", e.name, type_name(v)));
        if (e.name == "+") return v.is_float() ? v : Value(number_as_int(v));
        if (v.is_float()) return -std::get<double>(v.v);
        return -number_as_int(v);
      }
      case Expr::Kind::Binary: {
        const std::string& op = e.name;
        if (op == "and" || op == "or") {
          Value left = eval(*e.items[0], scope);
          if (truthy(left) == (op == "or")) return left;
          return eval(*e.items[1], scope);
        }
        const Value a = eval(*e.items[0], scope), b = eval(*e.items[1], scope);
        if (op == "==") return equal(a, b);
        if (op == "!=") return !equal(a, b);
        if (op == "in") return contains(b, a);
        if (op == "not in") return !contains(b, a);
        if (op == "~") return to_str(a) + to_str(b);
        if (op == "<" || op == "<=" || op == ">" || op == ">=") {
          const std::optional<int> c = compare(a, b);
          if (!c) fail(fmt::format("'{}' not supported between '{}' and '{}'", op, type_name(a), type_name(b)));
          if (op == "<") return *c < 0;
          if (op == "<=") return *c <= 0;
          if (op == ">") return *c > 0;
          return *c >= 0;
        }
        return arithmetic(op, a, b);
      }
      case Expr::Kind::Cond:
        if (truthy(eval(*e.items[1], scope))) return eval(*e.items[0], scope);
        return e.items[2] ? eval(*e.items[2], scope) : Value(Undefined{"the else branch of an 'if' expression"});
    }
    return Undefined{};
  }

  // ---- tests ----
 public:
  static bool apply_test(const std::string& name, const Value& v, const Args& args) {
    const auto arg0 = [&]() -> const Value& {
      if (args.empty()) fail(fmt::format("the test '{}' needs an argument", name));
      return args[0];
    };
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_number();
    if (name == "integer") return v.is_int();
    if (name == "float") return v.is_float();
    if (name == "boolean") return v.is_bool();
    if (name == "true") return v.is_bool() && std::get<bool>(v.v);
    if (name == "false") return v.is_bool() && !std::get<bool>(v.v);
    if (name == "mapping") return v.is_dict() && !v.dict().is_namespace;
    if (name == "sequence") return v.is_string() || v.is_list() || (v.is_dict() && !v.dict().is_namespace);
    if (name == "iterable") return v.is_string() || v.is_list() || (v.is_dict() && !v.dict().is_namespace);
    if (name == "callable") return v.is_function();
    if (name == "odd" || name == "even") return (as_int(v, "the value tested") % 2 != 0) == (name == "odd");
    if (name == "divisibleby") {
      const int64_t d = as_int(arg0(), "divisibleby's argument");
      if (d == 0) fail("divisibleby(0)");
      return d == -1 || as_int(v, "the value tested") % d == 0;  // x % -1 traps for the smallest int64
    }
    if (name == "eq" || name == "equalto" || name == "sameas") return equal(v, arg0());
    if (name == "ne") return !equal(v, arg0());
    if (name == "lt" || name == "le" || name == "gt" || name == "ge" || name == "lessthan" || name == "greaterthan") {
      const std::optional<int> c = compare(v, arg0());
      if (!c) fail(fmt::format("the test '{}' cannot compare '{}' and '{}'", name, type_name(v), type_name(arg0())));
      if (name == "lt" || name == "lessthan") return *c < 0;
      if (name == "le") return *c <= 0;
      if (name == "gt" || name == "greaterthan") return *c > 0;
      return *c >= 0;
    }
    if (name == "in") return contains(arg0(), v);
    if (name == "upper" || name == "lower") {
      const std::string s = to_str(v);
      return s == (name == "upper" ? map_chars(s, ascii_upper) : map_chars(s, ascii_lower));
    }
    fail(fmt::format("unknown test '{}'", name));
  }

  // ---- filters ----
  Value apply_filter(const std::string& name, const Value& v, const Args& a, const Kwargs& k) {
    if (name == "trim") {
      check_arity(name, a, k, 1, {"chars"});
      const Value chars = arg(a, k, 0, "chars", NoneValue{});
      return chars.is_none() ? strip(to_str(v), nullptr, true, true)
                             : strip(to_str(v), &as_string(chars, "trim's chars"), true, true);
    }
    if (name == "upper") return map_chars(to_str(v), ascii_upper);
    if (name == "lower") return map_chars(to_str(v), ascii_lower);
    if (name == "capitalize") return capitalize(to_str(v));
    if (name == "title") return title_words(to_str(v), false);
    if (name == "replace") {
      check_arity(name, a, k, 3, {"old", "new", "count"});
      return replace_all(to_str(v), to_str(arg(a, k, 0, "old")), to_str(arg(a, k, 1, "new")),
                         arg(a, k, 2, "count", NoneValue{}).is_none() ? -1 : as_int(arg(a, k, 2, "count"), "count"));
    }
    if (name == "join") {
      check_arity(name, a, k, 2, {"d", "attribute"});
      const std::string sep = to_str(arg(a, k, 0, "d", ""));
      const Value attribute = arg(a, k, 1, "attribute", NoneValue{});
      std::string out;
      bool first = true;
      for (const Value& item : iterate(v)) {
        if (!first) out += sep;
        out += to_str(attribute.is_none() ? item : get_attr_path(item, attribute));
        first = false;
      }
      return out;
    }
    if (name == "length" || name == "count") return length(v);
    if (name == "first" || name == "last") {
      const std::vector<Value> items = iterate(v);
      if (items.empty()) return Undefined{"the " + name + " item of an empty sequence"};
      return name == "first" ? items.front() : items.back();
    }
    if (name == "list") return make_list(iterate(v));
    if (name == "string") return to_str(v);
    if (name == "safe") return v;
    if (name == "escape" || name == "e") {
      std::string out;
      for (const char c : to_str(v)) {
        switch (c) {
          case '&':
            out += "&amp;";
            break;
          case '<':
            out += "&lt;";
            break;
          case '>':
            out += "&gt;";
            break;
          case '"':
            out += "&#34;";
            break;
          case '\'':
            out += "&#39;";
            break;
          default:
            out.push_back(c);
        }
      }
      return out;
    }
    if (name == "reverse") {
      if (v.is_string()) {
        std::u32string u = to_u32(v.str());
        std::reverse(u.begin(), u.end());
        return from_u32(u);
      }
      std::vector<Value> items = iterate(v);
      std::reverse(items.begin(), items.end());
      return make_list(std::move(items));
    }
    if (name == "default" || name == "d") {
      check_arity(name, a, k, 2, {"default_value", "boolean"});
      const bool boolean = truthy(arg(a, k, 1, "boolean", false));
      if (v.is_undefined() || (boolean && !truthy(v))) return arg(a, k, 0, "default_value", "");
      return v;
    }
    if (name == "tojson") {
      // transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
      check_arity(name, a, k, 4, {"ensure_ascii", "indent", "separators", "sort_keys"});
      JsonFormat f;
      f.ensure_ascii = truthy(arg(a, k, 0, "ensure_ascii", false));
      const Value indent = arg(a, k, 1, "indent", NoneValue{});
      if (!indent.is_none()) {
        const int64_t n = as_int(indent, "tojson's indent");
        if (n > 64) fail("tojson's indent is larger than 64");
        f.indent = static_cast<int>(std::max<int64_t>(0, n));
      }
      const Value separators = arg(a, k, 2, "separators", NoneValue{});
      if (!separators.is_none()) {
        if (!separators.is_list() || separators.list().items.size() != 2)
          fail("tojson's separators must be a pair of strings");
        f.item_separator = as_string(separators.list().items[0], "a separator");
        f.key_separator = as_string(separators.list().items[1], "a separator");
      }
      f.sort_keys = truthy(arg(a, k, 3, "sort_keys", false));
      return to_json_text(v, f);
    }
    if (name == "items") {
      if (v.is_undefined()) return make_list({});
      if (!v.is_dict() || v.dict().is_namespace) fail(fmt::format("items: a {} is not a mapping", type_name(v)));
      std::vector<Value> out;
      for (const auto& [key, item] : v.dict().items) out.push_back(make_list({Value(key), item}, true));
      return make_list(std::move(out));
    }
    if (name == "sort" || name == "unique" || name == "max" || name == "min") {
      check_arity(name, a, k, name == "sort" ? 3 : 2, {"reverse", "case_sensitive", "attribute"});
      const bool reverse = name == "sort" && truthy(arg(a, k, 0, "reverse", false));
      const size_t off = name == "sort" ? 1 : 0;
      const bool case_sensitive = truthy(arg(a, k, off, "case_sensitive", false));
      const Value attribute = arg(a, k, off + 1, "attribute", NoneValue{});
      const auto key = [&](const Value& item) {
        Value kv = attribute.is_none() ? item : get_attr_path(item, attribute);
        if (!case_sensitive && kv.is_string()) kv = map_chars(kv.str(), ascii_lower);
        return kv;
      };
      std::vector<Value> items = iterate(v);
      if (name == "unique") {
        std::vector<Value> out, seen;
        for (const Value& item : items) {
          const Value kv = key(item);
          if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equal(s, kv); })) {
            seen.push_back(kv);
            out.push_back(item);
          }
        }
        return make_list(std::move(out));
      }
      const auto less = [&](const Value& x, const Value& y) {
        const std::optional<int> c = compare(key(x), key(y));
        if (!c) fail(fmt::format("{}: cannot order '{}' and '{}'", name, type_name(x), type_name(y)));
        return *c < 0;
      };
      if (name == "sort") {
        std::stable_sort(items.begin(), items.end(),
                         [&](const Value& x, const Value& y) { return reverse ? less(y, x) : less(x, y); });
        return make_list(std::move(items));
      }
      if (items.empty()) return Undefined{"the " + name + " of an empty sequence"};
      return name == "max" ? *std::max_element(items.begin(), items.end(), less)
                           : *std::min_element(items.begin(), items.end(), less);
    }
    if (name == "dictsort") {
      check_arity(name, a, k, 3, {"case_sensitive", "by", "reverse"});
      if (!v.is_dict() || v.dict().is_namespace) fail(fmt::format("dictsort: a {} is not a mapping", type_name(v)));
      const bool case_sensitive = truthy(arg(a, k, 0, "case_sensitive", false));
      const Value by = arg(a, k, 1, "by", "key");
      if (!by.is_string() || (by.str() != "key" && by.str() != "value")) fail("dictsort: by must be 'key' or 'value'");
      const bool reverse = truthy(arg(a, k, 2, "reverse", false));
      std::vector<Value> items;
      for (const auto& [key, item] : v.dict().items) items.push_back(make_list({Value(key), item}, true));
      const size_t at = by.str() == "key" ? 0 : 1;
      const auto key_of = [&](const Value& pair) {
        Value kv = pair.list().items[at];
        if (!case_sensitive && kv.is_string()) kv = map_chars(kv.str(), ascii_lower);
        return kv;
      };
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        const std::optional<int> c = reverse ? compare(key_of(y), key_of(x)) : compare(key_of(x), key_of(y));
        if (!c) fail("dictsort: the values cannot be ordered");
        return *c < 0;
      });
      return make_list(std::move(items));
    }
    if (name == "indent") {
      // jinja2's indent: every line but the first (first=true: also the first), blank lines
      // only with blank=true.
      check_arity(name, a, k, 3, {"width", "first", "blank"});
      const Value width = arg(a, k, 0, "width", int64_t{4});
      const int64_t spaces = width.is_string() ? 0 : std::max<int64_t>(0, as_int(width, "width"));
      if (spaces > 256 || (width.is_string() && width.str().size() > 256)) fail("indent's width is larger than 256");
      const std::string pad = width.is_string() ? width.str() : std::string(static_cast<size_t>(spaces), ' ');
      const bool first = truthy(arg(a, k, 1, "first", false)), blank = truthy(arg(a, k, 2, "blank", false));
      const std::vector<std::string> lines = split_lines(to_str(v) + "\n");
      std::string out;
      for (size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) out += "\n";
        if (i == 0 ? first : (blank || !lines[i].empty())) out += pad;
        out += lines[i];
      }
      return out;
    }
    if (name == "int") {
      check_arity(name, a, k, 2, {"default", "base"});
      const Value dflt = arg(a, k, 0, "default", int64_t{0});
      if (v.is_number()) return number_as_int(v);
      if (v.is_string()) {
        const std::string s = strip(v.str(), nullptr, true, true);
        try {
          size_t used = 0;
          const int64_t i = std::stoll(s, &used, 10);
          if (used == s.size()) return i;
          const double d = std::stod(s, &used);
          if (used == s.size()) return static_cast<int64_t>(d);
        } catch (const std::exception&) {
        }
      }
      return dflt;
    }
    if (name == "float") {
      check_arity(name, a, k, 1, {"default"});
      if (v.is_number()) return number_as_double(v);
      if (v.is_string()) {
        try {
          size_t used = 0;
          const std::string s = strip(v.str(), nullptr, true, true);
          const double d = std::stod(s, &used);
          if (used == s.size()) return d;
        } catch (const std::exception&) {
        }
      }
      return arg(a, k, 0, "default", 0.0);
    }
    if (name == "abs") {
      if (v.is_float()) return std::fabs(std::get<double>(v.v));
      if (v.is_number()) return std::abs(number_as_int(v));
      fail(fmt::format("bad operand type for abs(): '{}'", type_name(v)));
    }
    if (name == "sum") {
      check_arity(name, a, k, 2, {"attribute", "start"});
      const Value attribute = arg(a, k, 0, "attribute", NoneValue{});
      Value total = arg(a, k, 1, "start", int64_t{0});
      for (const Value& item : iterate(v))
        total = arithmetic("+", total, attribute.is_none() ? item : get_attr_path(item, attribute));
      return total;
    }
    if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
      const bool by_attr = name == "selectattr" || name == "rejectattr";
      const bool keep_if = name == "select" || name == "selectattr";
      if (!k.empty()) fail(fmt::format("{} takes no keyword arguments", name));
      if (by_attr && a.empty()) fail(fmt::format("{} needs an attribute name", name));
      const size_t test_at = by_attr ? 1 : 0;
      std::vector<Value> out;
      for (const Value& item : iterate(v)) {
        const Value subject = by_attr ? get_attr_path(item, a[0]) : item;
        bool r;
        if (a.size() <= test_at) {
          r = truthy(subject);
        } else {
          const std::string test = as_string(a[test_at], "a test name");
          if (!is_known_test(test)) fail(fmt::format("unknown test '{}'", test));
          r = apply_test(test, subject, Args(a.begin() + static_cast<ptrdiff_t>(test_at) + 1, a.end()));
        }
        if (r == keep_if) out.push_back(item);
      }
      return make_list(std::move(out));
    }
    if (name == "map") {
      std::vector<Value> out;
      if (const Value* attribute = find_kw(k, "attribute")) {
        const Value* dflt = find_kw(k, "default");
        for (const Value& item : iterate(v)) {
          Value r = get_attr_path(item, *attribute);
          out.push_back(r.is_undefined() && dflt ? *dflt : r);
        }
        return make_list(std::move(out));
      }
      if (a.empty()) fail("map needs a filter name or attribute=");
      const std::string filter = as_string(a[0], "a filter name");
      if (!is_known_filter(filter)) fail(fmt::format("unknown filter '{}'", filter));
      const Args rest(a.begin() + 1, a.end());
      for (const Value& item : iterate(v)) out.push_back(apply_filter(filter, item, rest, k));
      return make_list(std::move(out));
    }
    fail(fmt::format("unknown filter '{}'", name));
  }

 private:
  // item.attribute, where attribute may be dotted ("function.name") or an index.
  static Value get_attr_path(const Value& item, const Value& attribute) {
    if (attribute.is_int()) return get_item(item, attribute);
    Value cur = item;
    const std::string path = as_string(attribute, "an attribute name");
    size_t start = 0;
    while (true) {
      const size_t dot = path.find('.', start);
      const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (cur.is_undefined()) return cur;
      cur = get_item(cur, Value(part));
      if (dot == std::string::npos) return cur;
      start = dot + 1;
    }
  }
};

constexpr std::string_view kFilters[] = {
    "trim",  "upper",  "lower",  "capitalize", "title",      "replace",    "join", "length",   "count",
    "first", "last",   "list",   "string",     "safe",       "escape",     "e",    "reverse",  "default",
    "d",     "tojson", "items",  "sort",       "unique",     "max",        "min",  "int",      "float",
    "abs",   "sum",    "select", "reject",     "selectattr", "rejectattr", "map",  "dictsort", "indent"};
constexpr std::string_view kTests[] = {
    "defined", "undefined", "none",     "string",   "number", "integer",  "float",       "boolean", "true",    "false",
    "mapping", "sequence",  "iterable", "callable", "odd",    "even",     "divisibleby", "eq",      "equalto", "sameas",
    "ne",      "lt",        "le",       "gt",       "ge",     "lessthan", "greaterthan", "in",      "upper",   "lower"};

Value global_range(const Args& a, const Kwargs& k) {
  check_arity("range", a, k, 3, {});
  if (a.empty()) fail("range expected at least 1 argument");
  int64_t start = 0, stop, step = 1;
  if (a.size() == 1) {
    stop = as_int(a[0], "range's stop");
  } else {
    start = as_int(a[0], "range's start");
    stop = as_int(a[1], "range's stop");
    if (a.size() == 3) step = as_int(a[2], "range's step");
  }
  if (step == 0) fail("range() arg 3 must not be zero");
  std::vector<Value> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) fail("range() is too long for a template");
    out.emplace_back(i);
  }
  return make_list(std::move(out));
}

Value global_dict(const Args& a, const Kwargs& k, bool is_namespace) {
  auto d = std::make_shared<Dict>();
  d->is_namespace = is_namespace;
  if (a.size() > 1) fail("dict/namespace takes at most one positional argument");
  if (!a.empty()) {
    if (!a[0].is_dict()) fail(fmt::format("dict/namespace: cannot build from a {}", type_name(a[0])));
    for (const auto& [key, v] : a[0].dict().items) d->set(key, v);
  }
  for (const auto& [key, v] : k) {
    if (is_namespace && !key.empty() && key[0] == '_')
      fail(fmt::format("namespace attributes cannot start with '_' ({})", key));
    d->set(key, v);
  }
  return Value(std::move(d));
}

Value global_strftime_now(const Args& a, const Kwargs& k) {
  check_arity("strftime_now", a, k, 1, {});
  const std::string& format = as_string(a.empty() ? Value() : a[0], "strftime_now's format");
  if (format.size() > 128) fail("strftime_now's format is longer than 128 characters");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  const size_t n = std::strftime(buf, sizeof(buf), format.c_str(), &local);
  return std::string(buf, n);
}

}  // namespace

bool is_known_filter(std::string_view name) {
  return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters);
}

bool is_known_test(std::string_view name) {
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

std::string render_template(const Body& body, const nlohmann::ordered_json& variables) {
  Scope globals;
  globals.vars["range"] = make_function("range", global_range);
  globals.vars["dict"] = make_function("dict", [](const Args& a, const Kwargs& k) { return global_dict(a, k, false); });
  globals.vars["namespace"] =
      make_function("namespace", [](const Args& a, const Kwargs& k) { return global_dict(a, k, true); });
  globals.vars["raise_exception"] = make_function("raise_exception", [](const Args& a, const Kwargs&) -> Value {
    throw RaisedError(a.empty() ? std::string() : to_str(a[0]));
  });
  globals.vars["strftime_now"] = make_function("strftime_now", global_strftime_now);
  Scope top{{}, &globals};
  if (!variables.is_object()) throw ValueError("[chat_template] the template variables must be a JSON object");
  for (const auto& [name, value] : variables.items()) top.vars[name] = from_json(value);
  Renderer r;
  try {
    r.render(body, top, 0);
  } catch (const RaisedError& e) {
    throw ValueError(fmt::format("[chat_template] the template raised an exception: {}", e.what()));
  }
  return std::move(r.out);
}

}  // namespace lnx::data::jinja
