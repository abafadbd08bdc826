// The parser of the Jinja subset: jinja2's grammar, recursive descent over the lexer's pieces
// (chat_template_lex_internal.h), building the tree of chat_template_internal.h.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "data/chat_template_internal.h"
#include "data/chat_template_lex_internal.h"
#include "data/unicode.h"
#include "tensor/error.h"

namespace lnx::data::jinja {
namespace {

// ---- parser ----

// Bounds that keep parsing, rendering and freeing a template's tree within the stack (each
// works recursively): tags nested in tags, parentheses and brackets nested in an expression, and
// the parts of one expression (a left-nested chain such as 1+1+…+1 is as deep as it is long).
constexpr int kMaxBlockNesting = 64;
constexpr int kMaxExpressionNesting = 128;
constexpr size_t kMaxExpressionParts = 2048;
// The depth of an expression's tree, which rendering descends recursively (chains such as
// x|f|f|…|f or a.b.c… are built without recursion but are as deep as they are long).
constexpr int kMaxExpressionDepth = 128;

// Walks e's tree without recursion (it may be as deep as kMaxExpressionParts).
void check_depth(const Expr& e) {
  std::vector<std::pair<const Expr*, int>> stack{{&e, 1}};
  while (!stack.empty()) {
    const auto [x, depth] = stack.back();
    stack.pop_back();
    if (depth > kMaxExpressionDepth)
      syntax_error(x->pos, fmt::format("an expression nested more than {} deep", kMaxExpressionDepth));
    for (const ExprPtr& c : x->items)
      if (c) stack.push_back({c.get(), depth + 1});
    for (const ExprPtr& c : x->keys) stack.push_back({c.get(), depth + 1});
    for (const ExprPtr& c : x->args.positional) stack.push_back({c.get(), depth + 1});
    for (const auto& kv : x->args.keyword) stack.push_back({kv.second.get(), depth + 1});
  }
}

// check_depth over every expression of a body (block tags nest at most kMaxBlockNesting deep).
void check_depths(const Body& body) {
  for (const NodePtr& n : body) {
    for (const Expr* e : {n->expr.get(), n->condition.get()})
      if (e) check_depth(*e);
    for (const ExprPtr& e : n->conditions) check_depth(*e);
    for (const Body& b : n->bodies) check_depths(b);
    check_depths(n->body);
    check_depths(n->else_body);
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {}

  Body parse() {
    Body body = parse_body({});
    if (index_ < pieces_.size()) {
      const Piece& p = pieces_[index_];
      syntax_error(p.pos, fmt::format("unexpected '{{% {} %}}'", p.tokens[0].text));
    }
    return body;
  }

 private:
  // Counts a level of recursion (block tags or nested expressions) while alive.
  struct Nesting {
    Nesting(int& depth, int limit, Position pos, const char* what) : depth_(depth) {
      if (++depth_ > limit) {
        --depth_;
        syntax_error(pos, fmt::format("{} nested more than {} deep", what, limit));
      }
    }
    ~Nesting() { --depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;
    int& depth_;
  };

  // Statements up to a block tag named in ends (left unconsumed) or the end.
  Body parse_body(const std::vector<std::string>& ends) {
    const Nesting nesting(block_depth_, kMaxBlockNesting, index_ < pieces_.size() ? pieces_[index_].pos : Position{},
                          "block tags");
    Body body;
    while (index_ < pieces_.size()) {
      Piece& piece = pieces_[index_];
      if (piece.type == Piece::Type::Text) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::Text;
        node->pos = piece.pos;
        node->text = std::move(piece.text);
        body.push_back(std::move(node));
        ++index_;
        continue;
      }
      tokens_ = &piece.tokens;
      at_ = 0;
      if (piece.type == Piece::Type::Variable) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::Output;
        node->pos = piece.pos;
        expression_parts_ = 0;
        node->expr = parse_tuple(true);
        expect_end();
        body.push_back(std::move(node));
        ++index_;
        continue;
      }
      const Token& first = current();
      if (first.type != Token::Type::Name) syntax_error(first.pos, "a block tag must start with a name");
      if (std::find(ends.begin(), ends.end(), first.text) != ends.end()) return body;
      expression_parts_ = 0;
      body.push_back(parse_statement());
    }
    if (!ends.empty()) {
      std::string names;
      for (const std::string& e : ends) names += (names.empty() ? "" : " or ") + ("{% " + e + " %}");
      syntax_error(pieces_.empty() ? Position{} : pieces_.back().pos,
                   fmt::format("unexpected end of template: expected {} for the {} opened at line {}", names,
                               open_tags_.empty() ? "block" : open_tags_.back().first,
                               open_tags_.empty() ? 0 : open_tags_.back().second.line));
    }
    return body;
  }

  NodePtr parse_statement() {
    const std::string name = current().text;
    const Position pos = current().pos;
    auto node = std::make_unique<Node>();
    node->pos = pos;
    next();
    if (name == "if") {
      node->kind = Node::Kind::If;
      open_tags_.emplace_back("if", pos);
      node->conditions.push_back(parse_tuple(false));
      expect_end();
      while (true) {
        ++index_;
        node->bodies.push_back(parse_body({"elif", "else", "endif"}));
        const std::string tag = block_name();
        if (tag == "elif") {
          next();
          node->conditions.push_back(parse_tuple(false));
          expect_end();
          continue;
        }
        if (tag == "else") {
          next();
          expect_end();
          ++index_;
          node->else_body = parse_body({"endif"});
          next();
        } else {
          next();
        }
        expect_end();
        break;
      }
      open_tags_.pop_back();
    } else if (name == "for") {
      node->kind = Node::Kind::For;
      open_tags_.emplace_back("for", pos);
      node->targets = parse_targets("in");
      expect_name("in");
      node->expr = parse_tuple(false);
      if (is_name("if")) {
        next();
        node->condition = parse_expression(true);
      }
      if (is_name("recursive")) syntax_error(current().pos, "recursive for loops are not supported");
      expect_end();
      ++index_;
      node->body = parse_body({"else", "endfor"});
      if (block_name() == "else") {
        next();
        expect_end();
        ++index_;
        node->else_body = parse_body({"endfor"});
      }
      next();
      expect_end();
      open_tags_.pop_back();
    } else if (name == "set") {
      node->kind = Node::Kind::Set;
      if (current().type == Token::Type::Name && peek().type == Token::Type::Op && peek().text == ".") {
        node->targets.push_back(current().text);
        next();
        next();
        if (current().type != Token::Type::Name) syntax_error(current().pos, "expected an attribute name after '.'");
        node->attribute = current().text;
        next();
      } else {
        node->targets = parse_targets("=");
      }
      if (current().type == Token::Type::End) {
        // {% set x %}...{% endset %}: the rendered body becomes the value.
        if (!node->attribute.empty() || node->targets.size() != 1)
          syntax_error(pos, "a block set assigns one plain name");
        open_tags_.emplace_back("set", pos);
        ++index_;
        node->body = parse_body({"endset"});
        next();
        expect_end();
        open_tags_.pop_back();
      } else {
        if (!(current().type == Token::Type::Op && current().text == "="))
          syntax_error(current().pos, "expected '=' in {% set %}");
        next();
        node->expr = parse_tuple(true);
        expect_end();
      }
    } else if (name == "break" || name == "continue") {
      node->kind = name == "break" ? Node::Kind::Break : Node::Kind::Continue;
      expect_end();
    } else if (name == "generation") {
      node->kind = Node::Kind::Generation;
      open_tags_.emplace_back("generation", pos);
      expect_end();
      ++index_;
      node->body = parse_body({"endgeneration"});
      next();
      expect_end();
      open_tags_.pop_back();
    } else if (name.rfind("end", 0) == 0 || name == "elif" || name == "else") {
      syntax_error(pos, fmt::format("unexpected '{{% {} %}}' (no open block it could close)", name));
    } else {
      static const char* const kKnown[] = {"macro",   "call",  "filter", "include",    "import", "from",
                                           "extends", "block", "with",   "autoescape", "do",     "print"};
      const bool known = std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return name == k; }) !=
                         std::end(kKnown);
      syntax_error(pos, known ? fmt::format("the '{{% {} %}}' tag is not supported by this Jinja subset", name)
                              : fmt::format("unknown tag '{{% {} %}}'", name));
    }
    ++index_;
    return node;
  }

  std::string block_name() {
    if (index_ >= pieces_.size()) return "";
    tokens_ = &pieces_[index_].tokens;
    at_ = 0;
    return current().text;
  }

  // One name, or names separated by commas (optionally in parentheses), up to `stop`.
  std::vector<std::string> parse_targets(const char* stop) {
    std::vector<std::string> names;
    const bool paren = current().type == Token::Type::Op && current().text == "(";
    if (paren) next();
    while (true) {
      if (current().type != Token::Type::Name) syntax_error(current().pos, "expected a variable name");
      names.push_back(current().text);
      next();
      if (current().type == Token::Type::Op && current().text == ",") {
        next();
        if ((current().type == Token::Type::Name && current().text == stop && !paren) ||
            (current().type == Token::Type::Op && current().text == stop))
          break;
        continue;
      }
      break;
    }
    if (paren) expect_op(")");
    return names;
  }

  // ---- expressions ----
  const Token& current() const { return (*tokens_)[at_]; }
  const Token& peek() const { return (*tokens_)[std::min(at_ + 1, tokens_->size() - 1)]; }
  void next() {
    if (at_ + 1 < tokens_->size()) ++at_;
  }
  bool is_op(const char* op) const { return current().type == Token::Type::Op && current().text == op; }
  bool is_name(const char* name) const { return current().type == Token::Type::Name && current().text == name; }
  std::string describe(const Token& t) const {
    return t.type == Token::Type::End ? "the end of the tag" : fmt::format("'{}'", t.text);
  }
  void expect_op(const char* op) {
    if (!is_op(op)) syntax_error(current().pos, fmt::format("expected '{}', got {}", op, describe(current())));
    next();
  }
  void expect_name(const char* name) {
    if (!is_name(name)) syntax_error(current().pos, fmt::format("expected '{}', got {}", name, describe(current())));
    next();
  }
  void expect_end() {
    if (current().type != Token::Type::End)
      syntax_error(current().pos, fmt::format("unexpected {} (expected the end of the tag)", describe(current())));
  }

  ExprPtr make(Expr::Kind kind, Position pos) {
    if (++expression_parts_ > kMaxExpressionParts)
      syntax_error(pos, fmt::format("an expression of more than {} parts", kMaxExpressionParts));
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, Position pos) {
    ExprPtr e = make(Expr::Kind::Binary, pos);
    e->name = op;
    e->items.push_back(std::move(l));
    e->items.push_back(std::move(r));
    return e;
  }

  // Expressions separated by commas make a tuple (no parentheses needed).
  ExprPtr parse_tuple(bool with_condexpr) {
    const Position pos = current().pos;
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    ExprPtr tuple = make(Expr::Kind::List, pos);
    tuple->is_tuple = true;
    tuple->items.push_back(std::move(first));
    while (is_op(",")) {
      next();
      if (current().type == Token::Type::End) break;
      tuple->items.push_back(parse_expression(with_condexpr));
    }
    return tuple;
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      const Position pos = current().pos;
      next();
      ExprPtr cond = parse_or();
      ExprPtr otherwise;
      if (is_name("else")) {
        next();
        otherwise = parse_condexpr();
      }
      ExprPtr e = make(Expr::Kind::Cond, pos);
      e->items.push_back(std::move(expr));
      e->items.push_back(std::move(cond));
      e->items.push_back(std::move(otherwise));
      expr = std::move(e);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const Position pos = current().pos;
      next();
      left = binary("or", std::move(left), parse_and(), pos);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const Position pos = current().pos;
      next();
      left = binary("and", std::move(left), parse_not(), pos);
    }
    return left;
  }

  ExprPtr parse_not() {
    const Nesting nesting(expression_depth_, kMaxExpressionNesting, current().pos, "expressions");
    if (is_name("not")) {
      const Position pos = current().pos;
      next();
      ExprPtr e = make(Expr::Kind::Unary, pos);
      e->name = "not";
      e->items.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    std::vector<std::pair<std::string, ExprPtr>> ops;
    while (true) {
      std::string op;
      if (current().type == Token::Type::Op &&
          (current().text == "==" || current().text == "!=" || current().text == "<" || current().text == "<=" ||
           current().text == ">" || current().text == ">=")) {
        op = current().text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == Token::Type::Name && peek().text == "in") {
        op = "not in";
        next();
        next();
      } else {
        break;
      }
      ops.emplace_back(op, parse_math1());
    }
    if (ops.empty()) return first;
    // a < b < c is (a < b) and (b < c); the middle operand is evaluated twice.
    const Position pos = first->pos;
    ExprPtr result;
    const Expr* left = first.get();
    std::vector<ExprPtr> keep;
    keep.push_back(std::move(first));
    for (auto& [op, right] : ops) {
      ExprPtr cmp = binary(op, clone(*left), clone(*right), pos);
      result = result ? binary("and", std::move(result), std::move(cmp), pos) : std::move(cmp);
      left = right.get();
      keep.push_back(std::move(right));
    }
    return result;
  }

  ExprPtr clone(const Expr& e) {
    ExprPtr c = make(e.kind, e.pos);
    c->value = e.value;
    c->name = e.name;
    c->negated = e.negated;
    c->is_tuple = e.is_tuple;
    for (const ExprPtr& i : e.items) c->items.push_back(i ? clone(*i) : nullptr);
    for (const ExprPtr& k : e.keys) c->keys.push_back(clone(*k));
    for (const ExprPtr& a : e.args.positional) c->args.positional.push_back(clone(*a));
    for (const auto& [n, a] : e.args.keyword) c->args.keyword.emplace_back(n, clone(*a));
    return c;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = current().text;
      const Position pos = current().pos;
      next();
      left = binary(op, std::move(left), parse_concat(), pos);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const Position pos = current().pos;
      next();
      left = binary("~", std::move(left), parse_math2(), pos);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = current().text;
      const Position pos = current().pos;
      next();
      left = binary(op, std::move(left), parse_pow(), pos);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Position pos = current().pos;
      next();
      left = binary("**", std::move(left), parse_unary(true), pos);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const Nesting nesting(expression_depth_, kMaxExpressionNesting, current().pos, "expressions");
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      node = make(Expr::Kind::Unary, current().pos);
      node->name = current().text;
      next();
      node->items.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = current();
    ExprPtr e;
    switch (t.type) {
      case Token::Type::Name:
        if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
          e = make(Expr::Kind::Literal, t.pos);
          e->value = t.text == "true" || t.text == "True";
        } else if (t.text == "none" || t.text == "None") {
          e = make(Expr::Kind::Literal, t.pos);
          e->value = NoneValue{};
        } else {
          e = make(Expr::Kind::Name, t.pos);
          e->name = t.text;
        }
        next();
        return e;
      case Token::Type::String: {
        e = make(Expr::Kind::Literal, t.pos);
        std::string s;
        while (current().type == Token::Type::String) {  // adjacent strings concatenate
          s += current().text;
          next();
        }
        e->value = std::move(s);
        return e;
      }
      case Token::Type::Int:
      case Token::Type::Float:
        e = make(Expr::Kind::Literal, t.pos);
        e->value = t.value;
        next();
        return e;
      case Token::Type::Op:
        if (t.text == "(") return parse_parenthesized();
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        if (t.text == "*") syntax_error(t.pos, "'*' argument unpacking is not supported");
        [[fallthrough]];
      default:
        syntax_error(t.pos, fmt::format("unexpected {}", describe(t)));
    }
  }

  ExprPtr parse_parenthesized() {
    const Position pos = current().pos;
    next();
    if (is_op(")")) {
      next();
      ExprPtr e = make(Expr::Kind::List, pos);
      e->is_tuple = true;
      return e;
    }
    ExprPtr first = parse_expression(true);
    if (!is_op(",")) {
      expect_op(")");
      return first;
    }
    ExprPtr e = make(Expr::Kind::List, pos);
    e->is_tuple = true;
    e->items.push_back(std::move(first));
    while (is_op(",")) {
      next();
      if (is_op(")")) break;
      e->items.push_back(parse_expression(true));
    }
    expect_op(")");
    return e;
  }

  ExprPtr parse_list() {
    ExprPtr e = make(Expr::Kind::List, current().pos);
    next();
    while (!is_op("]")) {
      e->items.push_back(parse_expression(true));
      if (!is_op(",")) break;
      next();
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    ExprPtr e = make(Expr::Kind::Dict, current().pos);
    next();
    while (!is_op("}")) {
      e->keys.push_back(parse_expression(true));
      expect_op(":");
      e->items.push_back(parse_expression(true));
      if (!is_op(",")) break;
      next();
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        const Position pos = current().pos;
        next();
        if (current().type == Token::Type::Name) {
          ExprPtr e = make(Expr::Kind::Attr, pos);
          e->name = current().text;
          e->items.push_back(std::move(node));
          node = std::move(e);
          next();
        } else if (current().type == Token::Type::Int) {
          ExprPtr index = make(Expr::Kind::Literal, current().pos);
          index->value = current().value;
          next();
          ExprPtr e = make(Expr::Kind::Subscript, pos);
          e->items.push_back(std::move(node));
          e->items.push_back(std::move(index));
          node = std::move(e);
        } else {
          syntax_error(current().pos, fmt::format("expected an attribute name after '.', got {}", describe(current())));
        }
      } else if (is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Position pos = current().pos;
    next();
    ExprPtr parts[3];
    bool slice = false;
    for (int part = 0; part < 3; ++part) {
      if (!is_op(":") && !is_op("]")) parts[part] = parse_expression(true);
      if (is_op(":") && part < 2) {
        slice = true;
        next();
        continue;
      }
      break;
    }
    if (is_op(",")) syntax_error(current().pos, "tuple subscripts are not supported");
    expect_op("]");
    if (!slice) {
      if (!parts[0]) syntax_error(pos, "empty subscript");
      ExprPtr e = make(Expr::Kind::Subscript, pos);
      e->items.push_back(std::move(node));
      e->items.push_back(std::move(parts[0]));
      return e;
    }
    ExprPtr e = make(Expr::Kind::Slice, pos);
    e->items.push_back(std::move(node));
    for (ExprPtr& p : parts) e->items.push_back(std::move(p));
    return e;
  }

  CallArgs parse_args() {
    CallArgs args;
    expect_op("(");
    while (!is_op(")")) {
      if (is_op("*") || is_op("**")) syntax_error(current().pos, "'*' and '**' arguments are not supported");
      if (current().type == Token::Type::Name && peek().type == Token::Type::Op && peek().text == "=") {
        const std::string name = current().text;
        next();
        next();
        args.keyword.emplace_back(name, parse_expression(true));
      } else {
        if (!args.keyword.empty()) syntax_error(current().pos, "a positional argument follows keyword arguments");
        args.positional.push_back(parse_expression(true));
      }
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr node) {
    ExprPtr e = make(Expr::Kind::Call, current().pos);
    e->args = parse_args();
    e->items.push_back(std::move(node));
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        const Position pos = current().pos;
        next();
        if (current().type != Token::Type::Name)
          syntax_error(current().pos, fmt::format("expected a filter name, got {}", describe(current())));
        ExprPtr e = make(Expr::Kind::Filter, pos);
        e->name = current().text;
        if (!is_known_filter(e->name))
          syntax_error(current().pos, fmt::format("unknown filter '{}' (not in this Jinja subset)", e->name));
        next();
        if (is_op(".")) syntax_error(current().pos, "dotted filter names are not supported");
        if (is_op("(")) e->args = parse_args();
        e->items.push_back(std::move(node));
        node = std::move(e);
      } else if (is_name("is")) {
        const Position pos = current().pos;
        next();
        ExprPtr e = make(Expr::Kind::Test, pos);
        if (is_name("not")) {
          e->negated = true;
          next();
        }
        if (current().type != Token::Type::Name)
          syntax_error(current().pos, fmt::format("expected a test name, got {}", describe(current())));
        e->name = current().text;
        if (!is_known_test(e->name))
          syntax_error(current().pos, fmt::format("unknown test '{}' (not in this Jinja subset)", e->name));
        next();
        if (is_op("(")) {
          e->args = parse_args();
        } else if ((current().type == Token::Type::Name || current().type == Token::Type::String ||
                    current().type == Token::Type::Int || current().type == Token::Type::Float || is_op("[") ||
                    is_op("{") || is_op("(")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          // One argument without parentheses: `x is divisibleby 3`, `x is eq 'a'`.
          e->args.positional.push_back(parse_postfix(parse_primary()));
        }
        e->items.push_back(std::move(node));
        node = std::move(e);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  std::vector<Piece> pieces_;
  size_t index_ = 0;
  const std::vector<Token>* tokens_ = nullptr;
  size_t at_ = 0;
  std::vector<std::pair<std::string, Position>> open_tags_;
  int block_depth_ = 0, expression_depth_ = 0;
  size_t expression_parts_ = 0;  // of the expression or tag being parsed
};

}  // namespace

Body parse_template(std::string_view source) {
  // Newlines as jinja2 reads them (\r\n and \r become \n) and the one trailing newline
  // dropped (keep_trailing_newline is off).
  std::string text;
  text.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      text.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      text.push_back(source[i]);
    }
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  Body body = Parser(lex_template(std::move(text))).parse();
  check_depths(body);
  return body;
}

}  // namespace lnx::data::jinja
