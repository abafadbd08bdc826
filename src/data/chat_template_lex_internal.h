// Internal to the chat templates: the lexer of the Jinja subset (chat_template_lex.cpp) and
// the pieces it hands the parser.
#pragma once

#include <string>
#include <vector>

#include "data/chat_template_internal.h"

namespace lnx::data::jinja {

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

// ValueError "[chat_template] line L, column C: what".
[[noreturn]] void syntax_error(Position pos, const std::string& what);

// The template's text (newlines already normalised) as text pieces and tags, jinja2's way with
// transformers' options: trim_blocks, lstrip_blocks, whitespace control, comments dropped,
// {% raw %} kept verbatim.
std::vector<Piece> lex_template(std::string text);

}  // namespace lnx::data::jinja
