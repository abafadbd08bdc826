// Byte-level BPE tokenizer (internal header; the public API is data/tokenizer.h).
// Ids index model_bytes (the BPE tokens: byte strings) and the added tokens (matched in text
// as wholes; an id may be both, as GPT-NeoX's whitespace runs are). Merges are (left id,
// right id) -> (rank, merged id); lower rank merges first.
//
// encode(text), as Hugging Face's tokenizers does it: added tokens that are not "normalized"
// are cut out of the raw text; each stretch between them is normalized (NFC or nothing),
// "normalized" added tokens are cut out of that (their text normalized too), and what is left
// is split by the pre-tokenizer's pattern and each piece merged.
#pragma once

#include <array>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "data/tokenizer_pretokenize.h"

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

// One entry of tokenizer.json's added_tokens.
struct BpeAddedToken {
  std::string content;
  int32_t id = 0;
  bool special = true;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// Everything around the BPE model. The JSON parts are what save() writes back (null: the
// defaults of a trained tokenizer); they must agree with the fields above, which is what
// the loader guarantees.
struct BpeSettings {
  bool nfc = false;  // the normalizer
  SplitPattern pattern = SplitPattern::Gpt2;
  // ignore_merges: a pre-token that is itself in the vocabulary becomes that one id (the
  // Hugging Face option of the same name).
  bool ignore_merges = false;
  std::vector<int32_t> prefix_ids, suffix_ids;  // the post-processor's special tokens
  nlohmann::json normalizer, pre_tokenizer, post_processor, decoder;
};

class BpeTokenizer final : public Tokenizer {
 public:
  // token_bytes[id] for every id; byte_ids[b] = id of the one-byte token b; merges in rank
  // order (their results must already be in token_bytes); specials as (text, id), whose
  // token_bytes entries are their texts. GPT-2's pre-tokenizer, no normalizer.
  BpeTokenizer(std::vector<std::string> token_bytes, std::array<int32_t, 256> byte_ids,
               const std::vector<BpeMerge>& merges, std::vector<std::pair<std::string, int32_t>> specials,
               bool ignore_merges = false);
  // model_bytes[id]: the BPE bytes of id, empty for an id that is only an added token (every
  // id is one or the other or both); byte_ids, merges as above.
  BpeTokenizer(std::vector<std::string> model_bytes, std::array<int32_t, 256> byte_ids,
               const std::vector<BpeMerge>& merges, std::vector<BpeAddedToken> added, BpeSettings settings);

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(token_bytes_.size()); }
  std::string kind() const override { return "bpe"; }
  void save(const std::string& path) const override;

  const std::vector<BpeMerge>& merges() const { return merges_; }
  // What decode writes for id: an added token's text, else its BPE bytes.
  const std::string& token_bytes(int32_t id) const { return token_bytes_.at(static_cast<size_t>(id)); }
  const std::vector<BpeAddedToken>& added_tokens() const { return added_; }
  const BpeSettings& settings() const { return settings_; }

 private:
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  // BPE on one pre-token: start from its bytes, apply the lowest-rank merge (leftmost among
  // equals) until none applies.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_piece(std::string_view piece, std::vector<int32_t>& out) const;
  // Normalizes, cuts out the normalized added tokens, pre-tokenizes and merges.
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;

  std::vector<std::string> model_bytes_;
  std::vector<std::string> token_bytes_;
  std::array<int32_t, 256> byte_ids_;
  std::vector<BpeMerge> merges_;
  std::vector<BpeAddedToken> added_;
  BpeSettings settings_;
  struct RankAndResult {
    int32_t rank;
    int32_t result;
  };
  std::unordered_map<uint64_t, RankAndResult> merge_of_pair_;
  std::unordered_map<std::string, int32_t> id_of_bytes_;  // BPE tokens (model_bytes) only
  detail::SpecialMatcher raw_matcher_;                    // added tokens with normalized == false
  detail::SpecialMatcher normalized_matcher_;             // the others, their text normalized

  // Pre-token -> ids, shared by all encode calls; bounded so it cannot grow without limit.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

namespace detail {
std::unique_ptr<Tokenizer> load_bpe_tokenizer(const nlohmann::json& doc, const std::string& path);
}  // namespace detail

}  // namespace lnx::data
