// The split patterns as state machines. Each step looks at the character at the cursor and
// tries the pattern's alternatives in order, exactly as the regex would, and emits the piece
// the first alternative that matches would match.
#include "data/tokenizer_pretokenize.h"

#include <cstdint>

#include "data/unicode.h"

namespace lnx::data {
namespace {

constexpr std::string_view kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Char {
  CharClass cls;
  size_t length;  // bytes
};

class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool at_end(size_t pos) const { return pos >= text_.size(); }
  Char at(size_t pos) const {
    const DecodedChar c = decode_utf8(text_, pos);
    return {c.valid ? char_class(c.code_point) : CharClass::Other, c.length};
  }
  // End of the maximal run of characters of class cls starting at pos, at most max_chars long.
  size_t run_end(size_t pos, CharClass cls, size_t max_chars = SIZE_MAX) const {
    for (size_t n = 0; n < max_chars && !at_end(pos); ++n) {
      const Char c = at(pos);
      if (c.cls != cls) break;
      pos += c.length;
    }
    return pos;
  }
  size_t newline_run_end(size_t pos) const {
    while (!at_end(pos) && (text_[pos] == '\r' || text_[pos] == '\n')) ++pos;
    return pos;
  }
  // Length of the contraction ('s 't 're 've 'm 'll 'd) at pos, or 0; case_insensitive also
  // takes upper-case letters and U+017F for 's'.
  size_t contraction(size_t pos, bool case_insensitive) const {
    if (text_[pos] != '\'' || pos + 1 >= text_.size()) return 0;
    const auto is = [&](size_t i, char lower) {
      if (i >= text_.size()) return false;
      const char c = text_[i];
      return c == lower || (case_insensitive && c == lower - 'a' + 'A');
    };
    if (is(pos + 1, 's') || is(pos + 1, 't') || is(pos + 1, 'm') || is(pos + 1, 'd')) return 2;
    if (case_insensitive && text_.substr(pos + 1, 2) == "\xC5\xBF") return 3;  // U+017F
    if ((is(pos + 1, 'r') && is(pos + 2, 'e')) || (is(pos + 1, 'v') && is(pos + 2, 'e')) ||
        (is(pos + 1, 'l') && is(pos + 2, 'l')))
      return 3;
    return 0;
  }
  // \s+(?!\S) then \s+ on the whitespace run starting at pos: the run keeps its last
  // character for the next piece when a non-space follows, unless the run is that character.
  size_t whitespace_piece_end(size_t pos) const {
    const size_t run = run_end(pos, CharClass::Whitespace);
    if (at_end(run)) return run;
    size_t last = pos;  // start of the run's last character
    for (size_t p = pos; p < run; p += at(p).length) last = p;
    return last > pos ? last : run;
  }

 private:
  std::string_view text_;
};

// One piece of the GPT-2 pattern at pos; returns its end.
size_t gpt2_piece(const Cursor& cursor, std::string_view text, size_t pos) {
  if (const size_t n = cursor.contraction(pos, false); n > 0) return pos + n;
  // " ?X+": an optional ASCII space, then a run of letters, digits or "other" characters.
  size_t run_start = pos;
  CharClass run_class = cursor.at(pos).cls;
  if (text[pos] == ' ' && !cursor.at_end(pos + 1)) {
    const CharClass next = cursor.at(pos + 1).cls;
    if (next != CharClass::Whitespace) {
      run_start = pos + 1;
      run_class = next;
    }
  }
  if (run_class != CharClass::Whitespace) return cursor.run_end(run_start, run_class);
  return cursor.whitespace_piece_end(pos);
}

// One piece of the Llama-3 / Qwen2 pattern at pos; max_digits is 3 or 1.
size_t llama3_piece(const Cursor& cursor, std::string_view text, size_t pos, size_t max_digits) {
  if (const size_t n = cursor.contraction(pos, true); n > 0) return pos + n;
  const Char first = cursor.at(pos);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (first.cls == CharClass::Letter) return cursor.run_end(pos, CharClass::Letter);
  const bool is_newline = text[pos] == '\r' || text[pos] == '\n';
  if (!is_newline && first.cls != CharClass::Number && !cursor.at_end(pos + first.length) &&
      cursor.at(pos + first.length).cls == CharClass::Letter)
    return cursor.run_end(pos + first.length, CharClass::Letter);
  // \p{N}{1,3} or \p{N}
  if (first.cls == CharClass::Number) return cursor.run_end(pos, CharClass::Number, max_digits);
  // " ?[^\s\p{L}\p{N}]+[\r\n]*"
  size_t other_start = std::string_view::npos;
  if (first.cls == CharClass::Other)
    other_start = pos;
  else if (text[pos] == ' ' && !cursor.at_end(pos + 1) && cursor.at(pos + 1).cls == CharClass::Other)
    other_start = pos + 1;
  if (other_start != std::string_view::npos)
    return cursor.newline_run_end(cursor.run_end(other_start, CharClass::Other));
  // Only whitespace is left. \s*[\r\n]+: the run up to and including its last \r or \n.
  const size_t run = cursor.run_end(pos, CharClass::Whitespace);
  for (size_t p = run; p > pos; --p)
    if (text[p - 1] == '\r' || text[p - 1] == '\n') return p;
  // \s+(?!\S) then \s+.
  return cursor.whitespace_piece_end(pos);
}

}  // namespace

std::string_view split_pattern_regex(SplitPattern pattern) {
  switch (pattern) {
    case SplitPattern::Gpt2:
      return kGpt2Regex;
    case SplitPattern::Llama3:
      return kLlama3Regex;
    case SplitPattern::Qwen2:
      return kQwen2Regex;
  }
  return {};
}

std::optional<SplitPattern> recognise_split_pattern(std::string_view regex) {
  for (const SplitPattern p : {SplitPattern::Gpt2, SplitPattern::Llama3, SplitPattern::Qwen2})
    if (regex == split_pattern_regex(p)) return p;
  return std::nullopt;
}

const char* split_pattern_name(SplitPattern pattern) {
  switch (pattern) {
    case SplitPattern::Gpt2:
      return "gpt2";
    case SplitPattern::Llama3:
      return "llama3";
    case SplitPattern::Qwen2:
      return "qwen2";
  }
  return "?";
}

void pretokenize(SplitPattern pattern, std::string_view text, std::vector<std::string_view>& out) {
  const Cursor cursor(text);
  for (size_t pos = 0; pos < text.size();) {
    size_t end;
    switch (pattern) {
      case SplitPattern::Gpt2:
        end = gpt2_piece(cursor, text, pos);
        break;
      case SplitPattern::Llama3:
        end = llama3_piece(cursor, text, pos, 3);
        break;
      case SplitPattern::Qwen2:
      default:
        end = llama3_piece(cursor, text, pos, 1);
        break;
    }
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace lnx::data
