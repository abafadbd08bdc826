// The lexer of the Jinja subset (chat_template_lex_internal.h). It follows jinja2's with the options
// transformers uses (trim_blocks, lstrip_blocks, keep_trailing_newline off): template text,
// {{ }} and {% %} tags split into expression tokens (a tag ends at its closing delimiter only
// outside brackets), {# #} comments dropped, {% raw %} kept verbatim.
#include "data/chat_template_lex_internal.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "data/unicode.h"
#include "tensor/error.h"

namespace lnx::data::jinja {

void syntax_error(Position pos, const std::string& what) {
  throw ValueError(fmt::format("[chat_template] line {}, column {}: {}", pos.line, pos.column, what));
}

namespace {

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
      // strtod, not stod: Python reads 1e400 as inf and 1e-400 as 0.0, stod throws on both.
      t.value = std::strtod(text.c_str(), nullptr);
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

}  // namespace

std::vector<Piece> lex_template(std::string text) { return Lexer(std::move(text)).run(); }

}  // namespace lnx::data::jinja
