// Internal helpers shared by the tokenizer kinds: finding special tokens in text, reading a
// tokenizer file as JSON with limits, and writing one atomically. Units: byte offsets.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lnx::data::detail {

// A token matched as a whole in text, with Hugging Face's AddedToken options:
// single_word: only where no word character (is_word_char) touches it on either side;
// lstrip / rstrip: the match also takes the whitespace run on its left / right.
struct MatchedToken {
  std::string text;
  int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
};

// Cuts text at occurrences of special (added) tokens the way Hugging Face does: scanning left
// to right, the longest token starting at the leftmost position wins, so tokens are never
// split or overlapped. A single_word token that fails its word test is skipped as plain text
// (scanning resumes after it); lstrip never takes whitespace an earlier match has taken.
class SpecialMatcher {
 public:
  SpecialMatcher() = default;
  explicit SpecialMatcher(const std::vector<std::pair<std::string, int32_t>>& specials);
  explicit SpecialMatcher(std::vector<MatchedToken> tokens);

  bool empty() const { return by_length_.empty(); }

  // Calls on_text for each (non-empty) stretch of ordinary text and on_special for each
  // special token, in order.
  void split(std::string_view text, const std::function<void(std::string_view)>& on_text,
             const std::function<void(int32_t)>& on_special) const;

 private:
  std::vector<MatchedToken> by_length_;     // longest first
  std::array<bool, 256> starts_special_{};  // first bytes of any special
};

// Throws ValueError unless every special is non-empty and distinct.
void check_specials(const std::vector<std::string>& specials, const char* component);

// Reads and parses a JSON file; missing, oversized or unparsable files raise IOError.
nlohmann::json read_json_file(const std::string& path);

// Writes text to path atomically (temporary file, fsync, rename); failures raise IOError.
void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace lnx::data::detail
