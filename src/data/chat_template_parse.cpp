// Lexer and parser of the Jinja subset. The lexer follows jinja2's with the options
// transformers uses (trim_blocks, lstrip_blocks, keep_trailing_newline off): template text,
// {{ }} and {% %} tags split into expression tokens (a tag ends at its closing delimiter only
// outside brackets), {# #} comments dropped, {% raw %} kept verbatim. The parser is jinja2's
// grammar, recursive descent, building the tree of chat_template_internal.h.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "data/chat_template_internal.h"
#include "data/unicode.h"
#include "tensor/error.h"

namespace lnx::data::jinja {
namespace {

struct Token {
  enum class Type { Name, Int, Float, String, Op, End };
  Type type = Type::End;
  std::string text;  // name, operator, or the decoded string
  Value value;       // Int, Float
  Position pos;
};

struct Piece {
  enum class Type { Text, Variable, Block };
  Type type;
  std::string text;           // Text
  std::vector<Token> tokens;  // Variable, Block (ends with an End token)
  Position pos;
};

[[noreturn]] void syntax_error(Position pos, const std::string& what) {
  throw ValueError(fmt::format("[chat_template] line {}, column {}: {}", pos.line, pos.column, what));
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Piece> run() {
    std::vector<Piece> pieces;
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      const size_t start = next_tag(pos);
      if (start == std::string::npos) {
        add_text(pieces, src_.substr(pos), pos);
        break;
      }
      const char kind = src_[start + 1];
      const char sign =
          start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+') ? src_[start + 2] : '\0';
      add_text(pieces, strip_before(src_.substr(pos, start - pos), sign, kind != '{', line_starting), pos);
      const size_t inner = start + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        size_t end = src_.find("#}", inner);
        if (end == std::string::npos) syntax_error(position(start), "the comment is never closed with #}");
        char end_sign = '\0';
        if (end > inner && (src_[end - 1] == '-' || src_[end - 1] == '+')) end_sign = src_[end - 1];
        pos = after_end(end + 2, end_sign, true, line_starting);
        continue;
      }
      if (kind == '%' && is_raw(inner)) {
        pos = lex_raw(pieces, inner, line_starting);
        continue;
      }
      Piece piece{kind == '{' ? Piece::Type::Variable : Piece::Type::Block, "", {}, position(start)};
      const auto [end, end_sign] = tokenize(inner, kind == '{', piece.tokens, start);
      pieces.push_back(std::move(piece));
      pos = after_end(end, end_sign, kind == '%', line_starting);
    }
    return pieces;
  }

 private:
  Position position(size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  size_t next_tag(size_t pos) const {
    while (true) {
      pos = src_.find('{', pos);
      if (pos == std::string::npos || pos + 1 >= src_.size()) return std::string::npos;
      const char c = src_[pos + 1];
      if (c == '{' || c == '%' || c == '#') return pos;
      ++pos;
    }
  }

  static size_t python_space_prefix(std::string_view s, size_t pos) {
    while (pos < s.size()) {
      const DecodedChar c = decode_utf8(s, pos);
      if (!c.valid || !is_python_space(c.code_point)) break;
      pos += c.length;
    }
    return pos;
  }
  static std::string rstrip(std::string s) {
    // Python's str.rstrip(): trailing whitespace characters, decoded from the end.
    size_t end = s.size();
    while (end > 0) {
      size_t start = end - 1;
      while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
      const DecodedChar c = decode_utf8(s, start);
      if (!c.valid || start + c.length != end || !is_python_space(c.code_point)) break;
      end = start;
    }
    s.resize(end);
    return s;
  }

  // The text before a tag, after the tag's whitespace control: "-" strips all whitespace
  // before it; lstrip_blocks removes the spaces between a line start and a block tag.
  std::string strip_before(std::string text, char sign, bool block_or_comment, bool line_starting) const {
    if (sign == '-') return rstrip(std::move(text));
    if (sign == '+' || !block_or_comment) return text;
    const size_t newline = text.rfind('\n');
    const size_t line_start = newline == std::string::npos ? 0 : newline + 1;
    if ((line_start > 0 || line_starting) && python_space_prefix(text, line_start) == text.size())
      text.resize(line_start);
    return text;
  }

  // Position after a closing delimiter ending at end: "-" strips following whitespace, a
  // block's plain delimiter takes one following newline (trim_blocks).
  size_t after_end(size_t end, char end_sign, bool trims_newline, bool& line_starting) const {
    size_t pos = end;
    if (end_sign == '-')
      pos = python_space_prefix(src_, end);
    else if (end_sign != '+' && trims_newline && pos < src_.size() && src_[pos] == '\n')
      ++pos;
    line_starting = pos > 0 && src_[pos - 1] == '\n';
    return pos;
  }

  void add_text(std::vector<Piece>& pieces, std::string text, size_t offset) const {
    if (!text.empty()) pieces.push_back({Piece::Type::Text, std::move(text), {}, position(offset)});
  }

  // {% raw %} (the block start's inner text begins at inner).
  bool is_raw(size_t inner) const {
    size_t p = inner;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t' || src_[p] == '\n' || src_[p] == '\r')) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t' || src_[p] == '\n' || src_[p] == '\r')) ++p;
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }

  size_t lex_raw(std::vector<Piece>& pieces, size_t inner, bool& line_starting) {
    size_t p = src_.find("%}", inner);
    const bool strip = src_[p - 1] == '-';
    size_t pos = p + 2;
    if (strip) pos = python_space_prefix(src_, pos);  // no trim_blocks after "raw %}"
    line_starting = pos > 0 && src_[pos - 1] == '\n';
    // The first {% endraw %} (with optional signs and spaces).
    for (size_t search = pos;;) {
      const size_t start = src_.find("{%", search);
      if (start == std::string::npos) syntax_error(position(inner), "{% raw %} is never closed with {% endraw %}");
      size_t q = start + 2;
      const char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : '\0';
      if (sign) ++q;
      while (q < src_.size() && std::strchr(" \t\r\n", src_[q]) != nullptr) ++q;
      if (src_.compare(q, 6, "endraw") != 0) {
        search = start + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && std::strchr(" \t\r\n", src_[q]) != nullptr) ++q;
      char end_sign = '\0';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) syntax_error(position(start), "malformed {% endraw %}");
      add_text(pieces, strip_before(src_.substr(pos, start - pos), sign, true, line_starting), pos);
      return after_end(q + 2, end_sign, true, line_starting);
    }
  }

  // Expression tokens from pos up to the tag's closing delimiter; returns (position after
  // the delimiter, its sign).
  std::pair<size_t, char> tokenize(size_t pos, bool variable, std::vector<Token>& tokens, size_t tag_start) {
    std::vector<char> brackets;
    const char* close = variable ? "}}" : "%}";
    while (true) {
      pos = python_space_prefix(src_, pos);
      if (pos >= src_.size()) syntax_error(position(tag_start), fmt::format("the tag is never closed with {}", close));
      if (brackets.empty()) {
        if (src_.compare(pos, 2, close) == 0) {
          tokens.push_back({Token::Type::End, "", {}, position(pos)});
          return {pos + 2, '\0'};
        }
        if ((src_[pos] == '-' || (!variable && src_[pos] == '+')) && src_.compare(pos + 1, 2, close) == 0) {
          tokens.push_back({Token::Type::End, "", {}, position(pos)});
          return {pos + 3, src_[pos]};
        }
      }
      Token t;
      t.pos = position(pos);
      const char c = src_[pos];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t end = pos;
        while (end < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) ++end;
        t.type = Token::Type::Name;
        t.text = src_.substr(pos, end - pos);
        pos = end;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        pos = lex_number(pos, t);
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos, t);
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                           "]",  "(",  ")",  "{",  "}",  ",",  ".", ":", "|", "=", "<", ">", ";"};
        const char* op = nullptr;
        for (const char* candidate : kOps) {
          if (src_.compare(pos, std::strlen(candidate), candidate) == 0) {
            op = candidate;
            break;
          }
        }
        if (op == nullptr) syntax_error(t.pos, fmt::format("unexpected character '{}'", src_.substr(pos, 1)));
        t.type = Token::Type::Op;
        t.text = op;
        pos += t.text.size();
        if (t.text == "(" || t.text == "[" || t.text == "{") brackets.push_back(t.text[0]);
        if (t.text == ")" || t.text == "]" || t.text == "}") {
          const char open = t.text == ")" ? '(' : (t.text == "]" ? '[' : '{');
          if (brackets.empty() || brackets.back() != open) syntax_error(t.pos, fmt::format("unexpected '{}'", t.text));
          brackets.pop_back();
        }
      }
      tokens.push_back(std::move(t));
    }
  }

  size_t lex_number(size_t pos, Token& t) const {
    const auto digits = [&](size_t p) {
      while (p < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[p])) ||
                                 (src_[p] == '_' && p + 1 < src_.size() && std::isdigit(src_[p + 1]))))
        ++p;
      return p;
    };
    size_t end = digits(pos);
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' && std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
      end = digits(end + 1);
      is_float = true;
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t p = end + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
        end = digits(p);
        is_float = true;
      }
    }
    std::string text = src_.substr(pos, end - pos);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    if (is_float) {
      t.type = Token::Type::Float;
      t.value = std::stod(text);
    } else {
      t.type = Token::Type::Int;
      try {
        t.value = static_cast<int64_t>(std::stoll(text));
      } catch (const std::out_of_range&) {
        syntax_error(t.pos, fmt::format("integer {} is too large", text));
      }
    }
    t.text = text;
    return end;
  }

  // A quoted string with Python's escapes (as jinja2 decodes them: unicode-escape).
  size_t lex_string(size_t pos, Token& t) const {
    const char quote = src_[pos];
    std::string out;
    size_t p = pos + 1;
    while (true) {
      if (p >= src_.size()) syntax_error(t.pos, "the string is never closed");
      const char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) syntax_error(t.pos, "the string is never closed");
      const char e = src_[p + 1];
      p += 2;
      const auto hex = [&](size_t n) {
        if (p + n > src_.size()) syntax_error(t.pos, "truncated escape in a string");
        uint32_t v = 0;
        for (size_t i = 0; i < n; ++i) {
          const char h = src_[p + i];
          if (!std::isxdigit(static_cast<unsigned char>(h))) syntax_error(t.pos, "bad escape in a string");
          v = v * 16 + static_cast<uint32_t>(
                           std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        p += n;
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) syntax_error(t.pos, "bad code point escape in a string");
        append_utf8(out, v);
      };
      switch (e) {
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case '\n':
          break;  // line continuation
        case 'x':
          hex(2);
          break;
        case 'u':
          hex(4);
          break;
        case 'U':
          hex(8);
          break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++i, ++p)
              v = v * 8 + static_cast<uint32_t>(src_[p] - '0');
            append_utf8(out, v);
          } else {
            out.push_back('\\');  // unknown escapes stay as written
            out.push_back(e);
          }
      }
    }
    t.type = Token::Type::String;
    t.text = out;
    return p + 1;
  }

  std::string src_;
  std::vector<size_t> line_starts_;
};

// ---- parser ----

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
  // Statements up to a block tag named in ends (left unconsumed) or the end.
  Body parse_body(const std::vector<std::string>& ends) {
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
        node->expr = parse_tuple(true);
        expect_end();
        body.push_back(std::move(node));
        ++index_;
        continue;
      }
      const Token& first = current();
      if (first.type != Token::Type::Name) syntax_error(first.pos, "a block tag must start with a name");
      if (std::find(ends.begin(), ends.end(), first.text) != ends.end()) return body;
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

  static ExprPtr make(Expr::Kind kind, Position pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  static ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, Position pos) {
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

  static ExprPtr clone(const Expr& e) {
    auto c = std::make_unique<Expr>();
    c->kind = e.kind;
    c->pos = e.pos;
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
  return Parser(Lexer(std::move(text)).run()).parse();
}

}  // namespace lnx::data::jinja
