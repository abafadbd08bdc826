// GPT-2 split pattern as a state machine. Each step looks at the character at the cursor and
// tries the pattern's alternatives in order, exactly as the regex would; every alternative
// after the contractions is a greedy run of one class, optionally led by one ASCII space.
#include "data/tokenizer_pretokenize.h"

#include "data/unicode.h"

namespace lnx::data {
namespace {

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
  // End of the maximal run of characters of class cls starting at pos.
  size_t run_end(size_t pos, CharClass cls) const {
    while (!at_end(pos)) {
      const Char c = at(pos);
      if (c.cls != cls) break;
      pos += c.length;
    }
    return pos;
  }
  // Length of the contraction ('s 't 're 've 'm 'll 'd, lower case only) at pos, or 0.
  size_t contraction(size_t pos) const {
    if (text_[pos] != '\'' || pos + 1 >= text_.size()) return 0;
    const char a = text_[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= text_.size()) return 0;
    const char b = text_[pos + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }

 private:
  std::string_view text_;
};

}  // namespace

void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& out) {
  const Cursor cursor(text);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end;
    if (const size_t n = cursor.contraction(pos); n > 0) {
      end = pos + n;  // 's|'t|'re|'ve|'m|'ll|'d
    } else {
      const Char first = cursor.at(pos);
      // " ?X+": an optional ASCII space, then a run of letters, digits or "other" characters.
      size_t run_start = pos;
      CharClass run_class = first.cls;
      if (text[pos] == ' ' && !cursor.at_end(pos + 1)) {
        const CharClass next = cursor.at(pos + 1).cls;
        if (next != CharClass::Whitespace) {
          run_start = pos + 1;
          run_class = next;
        }
      }
      if (run_class != CharClass::Whitespace) {
        end = cursor.run_end(run_start, run_class);
      } else {
        // \s+(?!\S) then \s+: a whitespace run keeps its last character for the next piece
        // when a non-space follows (so " word" can take its space), unless the run is that
        // single character.
        const size_t run = cursor.run_end(pos, CharClass::Whitespace);
        end = run;
        if (!cursor.at_end(run)) {
          size_t last = pos;  // start of the run's last character
          for (size_t p = pos; p < run; p += cursor.at(p).length) last = p;
          if (last > pos) end = last;
        }
      }
    }
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace lnx::data
