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

// Cuts text at occurrences of special tokens: at each byte the longest special starting
// there wins, scanning left to right, so specials are never split or overlapped.
class SpecialMatcher {
 public:
  SpecialMatcher() = default;
  explicit SpecialMatcher(const std::vector<std::pair<std::string, int32_t>>& specials);

  // Calls on_text for each (non-empty) stretch of ordinary text and on_special for each
  // special token, in order.
  void split(std::string_view text, const std::function<void(std::string_view)>& on_text,
             const std::function<void(int32_t)>& on_special) const;

 private:
  std::vector<std::pair<std::string, int32_t>> by_length_;  // longest first
  std::array<bool, 256> starts_special_{};                  // first bytes of any special
};

// Throws ValueError unless every special is non-empty and distinct.
void check_specials(const std::vector<std::string>& specials, const char* component);

// Reads and parses a JSON file; missing, oversized or unparsable files raise IOError.
nlohmann::json read_json_file(const std::string& path);

// Writes text to path atomically (temporary file, fsync, rename); failures raise IOError.
void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace lnx::data::detail
