// Byte-level BPE tokenizer (internal header; the public API is data/tokenizer.h).
// Ids index token_bytes: every id is either a BPE token (a byte string) or a special token
// (its text). Merges are (left id, right id) -> (rank, merged id); lower rank merges first.
#pragma once

#include <array>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"

namespace lnx::data {

// GPT-2's reversible map from bytes to printable code points, used to spell byte strings as
// vocabulary entries in tokenizer.json: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to
// themselves; the other 68 bytes, in increasing order, map to U+0100, U+0101, ... (so the
// space 0x20 becomes U+0120 'Ġ').
const std::array<char32_t, 256>& gpt2_byte_to_unicode();
std::string bytes_to_gpt2_text(std::string_view bytes);
// Inverse; nullopt when text holds a code point outside the table's image.
std::optional<std::string> gpt2_text_to_bytes(std::string_view text);

struct BpeMerge {
  int32_t left;
  int32_t right;
};

class BpeTokenizer final : public Tokenizer {
 public:
  // token_bytes[id] for every id; byte_ids[b] = id of the one-byte token b; merges in rank
  // order (their results must already be in token_bytes); specials as (text, id).
  // ignore_merges: a pre-token that is itself in the vocabulary becomes that one id (the
  // Hugging Face option of the same name).
  BpeTokenizer(std::vector<std::string> token_bytes, std::array<int32_t, 256> byte_ids,
               const std::vector<BpeMerge>& merges, std::vector<std::pair<std::string, int32_t>> specials,
               bool ignore_merges = false);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(token_bytes_.size()); }
  std::string kind() const override { return "bpe"; }
  void save(const std::string& path) const override;

  const std::vector<BpeMerge>& merges() const { return merges_; }
  const std::string& token_bytes(int32_t id) const { return token_bytes_.at(static_cast<size_t>(id)); }

 private:
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  // BPE on one pre-token: start from its bytes, apply the lowest-rank merge (leftmost among
  // equals) until none applies.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_piece(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> token_bytes_;
  std::array<int32_t, 256> byte_ids_;
  std::vector<BpeMerge> merges_;
  struct RankAndResult {
    int32_t rank;
    int32_t result;
  };
  std::unordered_map<uint64_t, RankAndResult> merge_of_pair_;
  std::unordered_map<std::string, int32_t> id_of_bytes_;  // BPE tokens only, not specials
  std::vector<bool> is_special_;
  bool ignore_merges_;
  detail::SpecialMatcher matcher_;

  // Pre-token -> ids, shared by all encode calls; bounded so it cannot grow without limit.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

namespace detail {
std::unique_ptr<Tokenizer> load_bpe_tokenizer(const nlohmann::json& doc, const std::string& path);
}  // namespace detail

}  // namespace lnx::data
