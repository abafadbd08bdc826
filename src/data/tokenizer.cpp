// Shared tokenizer machinery: special-token lookup and matching, kind detection on load,
// atomic saving, and the streaming UTF-8 decoder for generation. Units: bytes.
#include "data/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/tokenizer_bpe_internal.h"
#include "data/tokenizer_char_internal.h"
#include "data/tokenizer_internal.h"
#include "data/unicode.h"
#include "io/atomic_file.h"
#include "tensor/error.h"

namespace lnx::data {

std::optional<int32_t> Tokenizer::special_token(std::string_view name) const {
  for (const auto& [text, id] : specials_)
    if (text == name) return id;
  return std::nullopt;
}

std::vector<int32_t> Tokenizer::encode_with_special_tokens(std::string_view text) const {
  std::vector<int32_t> ids = prefix_ids_;
  const std::vector<int32_t> body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

namespace detail {

SpecialMatcher::SpecialMatcher(const std::vector<std::pair<std::string, int32_t>>& specials)
    : SpecialMatcher([&] {
        std::vector<MatchedToken> tokens;
        for (const auto& [text, id] : specials) tokens.push_back({text, id});
        return tokens;
      }()) {}

SpecialMatcher::SpecialMatcher(std::vector<MatchedToken> tokens) : by_length_(std::move(tokens)) {
  std::stable_sort(by_length_.begin(), by_length_.end(),
                   [](const MatchedToken& a, const MatchedToken& b) { return a.text.size() > b.text.size(); });
  for (const MatchedToken& t : by_length_)
    if (!t.text.empty()) starts_special_[static_cast<uint8_t>(t.text[0])] = true;
}

namespace {

// Start of the whitespace run that ends at end (end itself when none).
size_t whitespace_run_before(std::string_view text, size_t begin, size_t end) {
  size_t pos = end;
  while (pos > begin) {
    size_t start = pos - 1;  // back to the lead byte of the previous character
    while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    const DecodedChar c = decode_utf8(text, start);
    if (!c.valid || start + c.length != pos || char_class(c.code_point) != CharClass::Whitespace) break;
    pos = start;
  }
  return pos;
}

size_t whitespace_run_after(std::string_view text, size_t pos) {
  while (pos < text.size()) {
    const DecodedChar c = decode_utf8(text, pos);
    if (!c.valid || char_class(c.code_point) != CharClass::Whitespace) break;
    pos += c.length;
  }
  return pos;
}

bool word_char_before(std::string_view text, size_t pos) {
  if (pos == 0) return false;
  size_t start = pos - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  const DecodedChar c = decode_utf8(text, start);
  return c.valid && start + c.length == pos && is_word_char(c.code_point);
}

bool word_char_at(std::string_view text, size_t pos) {
  if (pos >= text.size()) return false;
  const DecodedChar c = decode_utf8(text, pos);
  return c.valid && is_word_char(c.code_point);
}

}  // namespace

void SpecialMatcher::split(std::string_view text, const std::function<void(std::string_view)>& on_text,
                           const std::function<void(int32_t)>& on_special) const {
  size_t plain_start = 0;  // end of the previous match
  for (size_t pos = 0; pos < text.size();) {
    const MatchedToken* found = nullptr;
    if (starts_special_[static_cast<uint8_t>(text[pos])]) {
      for (const MatchedToken& t : by_length_) {
        if (!t.text.empty() && text.substr(pos, t.text.size()) == t.text) {
          found = &t;
          break;
        }
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos, end = pos + found->text.size();
    if (found->single_word && (word_char_before(text, start) || word_char_at(text, end))) {
      pos = end;  // not a match: plain text, and scanning goes on after it
      continue;
    }
    if (found->lstrip) start = whitespace_run_before(text, plain_start, start);
    if (found->rstrip) end = whitespace_run_after(text, end);
    if (start > plain_start) on_text(text.substr(plain_start, start - plain_start));
    on_special(found->id);
    pos = end;
    plain_start = end;
  }
  if (plain_start < text.size()) on_text(text.substr(plain_start));
}

void check_specials(const std::vector<std::string>& specials, const char* component) {
  std::set<std::string> seen;
  for (const std::string& s : specials) {
    LNX_CHECK(!s.empty(), ValueError, "[{}] special tokens must be non-empty strings", component);
    LNX_CHECK(seen.insert(s).second, ValueError, "[{}] special tokens must be distinct, but '{}' is given twice",
              component, s);
  }
}

nlohmann::json read_json_file(const std::string& path) {
  // A tokenizer.json of a 256k-vocabulary model is ~20 MB; anything far larger is refused
  // rather than parsed into memory.
  constexpr uintmax_t kMaxBytes = uintmax_t{1} << 30;
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  LNX_CHECK(!ec, IOError, "[tokenizer] cannot read '{}': {}", path, ec.message());
  LNX_CHECK(size <= kMaxBytes, IOError, "[tokenizer] '{}' is {} bytes; at most {} are accepted", path, size, kMaxBytes);
  std::ifstream in(path, std::ios::binary);
  LNX_CHECK(in.good(), IOError, "[tokenizer] cannot open '{}'", path);
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  LNX_CHECK(!doc.is_discarded(), IOError, "[tokenizer] '{}' is not valid JSON", path);
  LNX_CHECK(doc.is_object(), IOError, "[tokenizer] '{}' must hold a JSON object, got {}", path, doc.type_name());
  return doc;
}

void write_text_atomic(const std::string& path, const std::string& text) {
  try {
    io::write_file_atomic("tokenizer", path, text);
  } catch (const IOError& e) {
    throw IOError(fmt::format("[tokenizer] saving '{}' failed: {}", path, e.what()));
  }
}

}  // namespace detail

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  const nlohmann::json doc = detail::read_json_file(path);
  try {
    if (doc.contains("type")) {
      LNX_CHECK(doc["type"].is_string() && doc["type"] == "char", IOError,
                "[tokenizer] '{}': \"type\" must be \"char\", got {}", path, doc["type"].dump());
      return detail::load_char_tokenizer(doc, path);
    }
    LNX_CHECK(doc.contains("model"), IOError,
              "[tokenizer] '{}' is neither a char tokenizer ({{\"type\": \"char\"}}) nor a "
              "Hugging Face tokenizer.json (no \"model\")",
              path);
    return detail::load_bpe_tokenizer(doc, path);
  } catch (const nlohmann::json::exception& e) {
    // A backstop: the loaders check types explicitly, so this names an unforeseen shape.
    throw IOError(fmt::format("[tokenizer] '{}' is malformed: {}", path, e.what()));
  }
}

namespace {

// Bytes a UTF-8 character starting with lead occupies; 0 when lead cannot start one.
size_t utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

}  // namespace

std::string StreamDecoder::push(int32_t id) {
  pending_ += tokenizer_->decode({id});
  // Hold back a trailing lead byte whose continuation bytes have not all arrived yet (with
  // the continuation bytes that have); everything before it goes out.
  size_t keep_from = pending_.size();
  const size_t look_back = std::min<size_t>(3, pending_.size());
  for (size_t back = 1; back <= look_back; ++back) {
    const size_t pos = pending_.size() - back;
    const uint8_t byte = static_cast<uint8_t>(pending_[pos]);
    if ((byte & 0xC0) == 0x80) continue;  // a continuation byte: keep looking for its lead
    const size_t need = utf8_sequence_length(byte);
    if (need > back) keep_from = pos;
    break;
  }
  std::string ready = pending_.substr(0, keep_from);
  pending_.erase(0, keep_from);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace lnx::data
