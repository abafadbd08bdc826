// Character-level tokenizer: training (distinct code points), encode/decode, and its JSON
// file {"type": "char", "version": 1, "chars": [code points], "specials": [texts]}.
// Units: code points (char32_t) and token ids (int32).
#include "data/tokenizer_char_internal.h"

#include <algorithm>
#include <set>

#include "data/unicode.h"
#include "tensor/error.h"

namespace lnx::data {

namespace {

// Puts <unk> first among the specials unless the caller already lists it.
std::vector<std::string> specials_with_unk(const std::vector<std::string>& specials) {
  if (std::find(specials.begin(), specials.end(), kUnkToken) != specials.end()) return specials;
  std::vector<std::string> all{kUnkToken};
  all.insert(all.end(), specials.begin(), specials.end());
  return all;
}

}  // namespace

CharTokenizer::CharTokenizer(std::vector<char32_t> chars, const std::vector<std::string>& specials)
    : chars_(std::move(chars)) {
  for (size_t i = 0; i < chars_.size(); ++i) id_of_char_[chars_[i]] = static_cast<int32_t>(i);
  for (size_t i = 0; i < specials.size(); ++i)
    specials_.emplace_back(specials[i], static_cast<int32_t>(chars_.size() + i));
  unk_id_ = *special_token(kUnkToken);
  matcher_ = detail::SpecialMatcher(specials_);
}

std::vector<int32_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  matcher_.split(
      text,
      [&](std::string_view plain) {
        for (size_t pos = 0; pos < plain.size();) {
          const DecodedChar c = decode_utf8(plain, pos);
          pos += c.length;
          const auto it = c.valid ? id_of_char_.find(c.code_point) : id_of_char_.end();
          ids.push_back(it == id_of_char_.end() ? unk_id_ : it->second);
        }
      },
      [&](int32_t special_id) { ids.push_back(special_id); });
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  const int64_t n_chars = static_cast<int64_t>(chars_.size());
  for (const int32_t id : ids) {
    LNX_CHECK(id >= 0 && id < vocab_size(), ValueError,
              "[char_tokenizer] token id {} is outside the vocabulary [0, {})", id, vocab_size());
    if (id < n_chars) {
      append_utf8(text, chars_[static_cast<size_t>(id)]);
    } else {
      text += specials_[static_cast<size_t>(id - n_chars)].first;
    }
  }
  return text;
}

int64_t CharTokenizer::vocab_size() const { return static_cast<int64_t>(chars_.size() + specials_.size()); }

void CharTokenizer::save(const std::string& path) const {
  nlohmann::json doc;
  doc["type"] = "char";
  doc["version"] = 1;
  nlohmann::json chars = nlohmann::json::array();
  for (const char32_t c : chars_) chars.push_back(static_cast<uint32_t>(c));
  doc["chars"] = std::move(chars);
  nlohmann::json specials = nlohmann::json::array();
  for (const auto& [text, id] : specials_) specials.push_back(text);
  doc["specials"] = std::move(specials);
  detail::write_text_atomic(path, doc.dump(1) + "\n");
}

std::unique_ptr<Tokenizer> train_char_tokenizer(std::string_view corpus, const std::vector<std::string>& specials) {
  detail::check_specials(specials, "char_tokenizer");
  std::set<char32_t> seen;
  for (size_t pos = 0; pos < corpus.size();) {
    const DecodedChar c = decode_utf8(corpus, pos);
    pos += c.length;
    if (c.valid) seen.insert(c.code_point);
  }
  return std::make_unique<CharTokenizer>(std::vector<char32_t>(seen.begin(), seen.end()), specials_with_unk(specials));
}

namespace detail {

std::unique_ptr<Tokenizer> load_char_tokenizer(const nlohmann::json& doc, const std::string& path) {
  LNX_CHECK(doc.contains("version") && doc["version"].is_number_integer() && doc["version"] == 1, IOError,
            "[char_tokenizer] '{}': \"version\" must be 1", path);
  LNX_CHECK(doc.contains("chars") && doc["chars"].is_array(), IOError,
            "[char_tokenizer] '{}': \"chars\" must be an array of code points", path);
  LNX_CHECK(doc.contains("specials") && doc["specials"].is_array(), IOError,
            "[char_tokenizer] '{}': \"specials\" must be an array of strings", path);
  std::vector<char32_t> chars;
  for (const nlohmann::json& c : doc["chars"]) {
    LNX_CHECK(c.is_number_unsigned(), IOError, "[char_tokenizer] '{}': \"chars\" holds {}, expected a code point", path,
              c.dump());
    const uint64_t cp = c.get<uint64_t>();
    LNX_CHECK(cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF), IOError,
              "[char_tokenizer] '{}': {} is not a Unicode scalar value", path, cp);
    LNX_CHECK(chars.empty() || chars.back() < cp, IOError,
              "[char_tokenizer] '{}': \"chars\" must be strictly ascending, but {} follows {}", path, cp,
              chars.empty() ? 0u : static_cast<uint32_t>(chars.back()));
    chars.push_back(static_cast<char32_t>(cp));
  }
  std::vector<std::string> specials;
  for (const nlohmann::json& s : doc["specials"]) {
    LNX_CHECK(s.is_string(), IOError, "[char_tokenizer] '{}': \"specials\" holds {}, expected a string", path,
              s.dump());
    specials.push_back(s.get<std::string>());
  }
  try {
    check_specials(specials, "char_tokenizer");
  } catch (const ValueError& e) {
    throw IOError(fmt::format("[char_tokenizer] '{}': {}", path, e.what()));
  }
  LNX_CHECK(std::find(specials.begin(), specials.end(), kUnkToken) != specials.end(), IOError,
            "[char_tokenizer] '{}': \"specials\" must include {}", path, kUnkToken);
  constexpr size_t kMaxVocab = size_t{1} << 24;
  LNX_CHECK(chars.size() + specials.size() <= kMaxVocab, IOError, "[char_tokenizer] '{}': vocabulary of {} exceeds {}",
            path, chars.size() + specials.size(), kMaxVocab);
  return std::make_unique<CharTokenizer>(std::move(chars), specials);
}

}  // namespace detail
}  // namespace lnx::data
