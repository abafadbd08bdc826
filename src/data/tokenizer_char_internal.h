// Character-level tokenizer (internal header; the public API is data/tokenizer.h).
// Ids: [0, n_chars) are the corpus's code points in ascending order, then the specials.
#pragma once

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"

namespace lnx::data {

inline constexpr const char* kUnkToken = "<unk>";

class CharTokenizer final : public Tokenizer {
 public:
  // chars: distinct code points, ascending; specials: texts, given ids after the chars.
  CharTokenizer(std::vector<char32_t> chars, const std::vector<std::string>& specials);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override;
  std::string kind() const override { return "char"; }
  void save(const std::string& path) const override;

 private:
  std::vector<char32_t> chars_;
  std::unordered_map<char32_t, int32_t> id_of_char_;
  detail::SpecialMatcher matcher_;
  int32_t unk_id_ = 0;
};

namespace detail {
std::unique_ptr<Tokenizer> load_char_tokenizer(const nlohmann::json& doc, const std::string& path);
}  // namespace detail

}  // namespace lnx::data
