// Byte-level BPE: the GPT-2 byte<->character table, encoding (specials, pre-tokenizer, merges
// by rank with a per-pre-token cache) and decoding. Units: bytes and token ids (int32).
#include "data/tokenizer_bpe_internal.h"

#include <algorithm>
#include <queue>

#include "data/unicode.h"
#include "tensor/error.h"

namespace lnx::data {

const std::array<char32_t, 256>& gpt2_byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next_spare = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : next_spare++;
    }
    return t;
  }();
  return table;
}

std::string bytes_to_gpt2_text(std::string_view bytes) {
  const auto& table = gpt2_byte_to_unicode();
  std::string text;
  text.reserve(bytes.size() * 2);
  for (const char b : bytes) append_utf8(text, table[static_cast<uint8_t>(b)]);
  return text;
}

std::optional<std::string> gpt2_text_to_bytes(std::string_view text) {
  // The table's image lies below U+0144; invert it once.
  static const std::array<int16_t, 0x144> inverse = [] {
    std::array<int16_t, 0x144> inv;
    inv.fill(-1);
    const auto& table = gpt2_byte_to_unicode();
    for (int b = 0; b < 256; ++b) inv[table[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
    return inv;
  }();
  std::string bytes;
  for (size_t pos = 0; pos < text.size();) {
    const DecodedChar c = decode_utf8(text, pos);
    if (!c.valid || c.code_point >= inverse.size() || inverse[c.code_point] < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(inverse[c.code_point]));
    pos += c.length;
  }
  return bytes;
}

namespace {

std::vector<BpeAddedToken> added_from_specials(const std::vector<std::pair<std::string, int32_t>>& specials) {
  std::vector<BpeAddedToken> added;
  for (const auto& [text, id] : specials) {
    BpeAddedToken t;
    t.content = text;
    t.id = id;
    added.push_back(std::move(t));
  }
  return added;
}

BpeSettings gpt2_settings(bool ignore_merges) {
  BpeSettings s;
  s.ignore_merges = ignore_merges;
  return s;
}

std::vector<std::string> without_specials(std::vector<std::string> token_bytes,
                                          const std::vector<std::pair<std::string, int32_t>>& specials) {
  for (const auto& [text, id] : specials) token_bytes.at(static_cast<size_t>(id)).clear();
  return token_bytes;
}

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<std::string> token_bytes, std::array<int32_t, 256> byte_ids,
                           const std::vector<BpeMerge>& merges, std::vector<std::pair<std::string, int32_t>> specials,
                           bool ignore_merges)
    : BpeTokenizer(without_specials(std::move(token_bytes), specials), byte_ids, merges, added_from_specials(specials),
                   gpt2_settings(ignore_merges)) {}

BpeTokenizer::BpeTokenizer(std::vector<std::string> model_bytes, std::array<int32_t, 256> byte_ids,
                           const std::vector<BpeMerge>& merges, std::vector<BpeAddedToken> added, BpeSettings settings)
    : model_bytes_(std::move(model_bytes)),
      token_bytes_(model_bytes_),
      byte_ids_(byte_ids),
      merges_(merges),
      added_(std::move(added)),
      settings_(std::move(settings)) {
  std::sort(added_.begin(), added_.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::vector<detail::MatchedToken> raw, normalized;
  for (const BpeAddedToken& t : added_) {
    token_bytes_.at(static_cast<size_t>(t.id)) = t.content;
    specials_.emplace_back(t.content, t.id);
    detail::MatchedToken m{t.content, t.id, t.single_word, t.lstrip, t.rstrip};
    if (t.normalized) {
      if (settings_.nfc) m.text = nfc(m.text);
      normalized.push_back(std::move(m));
    } else {
      raw.push_back(std::move(m));
    }
  }
  for (size_t id = 0; id < model_bytes_.size(); ++id)
    if (!model_bytes_[id].empty()) id_of_bytes_.emplace(model_bytes_[id], static_cast<int32_t>(id));
  merge_of_pair_.reserve(merges_.size());
  for (size_t rank = 0; rank < merges_.size(); ++rank) {
    const BpeMerge& m = merges_[rank];
    const std::string merged =
        model_bytes_.at(static_cast<size_t>(m.left)) + model_bytes_.at(static_cast<size_t>(m.right));
    const int32_t result = id_of_bytes_.at(merged);
    merge_of_pair_.emplace(pair_key(m.left, m.right), RankAndResult{static_cast<int32_t>(rank), result});
  }
  raw_matcher_ = detail::SpecialMatcher(std::move(raw));
  normalized_matcher_ = detail::SpecialMatcher(std::move(normalized));
  prefix_ids_ = settings_.prefix_ids;
  suffix_ids_ = settings_.suffix_ids;
}

void BpeTokenizer::merge_piece(std::string_view piece, std::vector<int32_t>& out) const {
  // Symbols form a linked list; a min-heap holds candidate merges (rank, position of the left
  // symbol). Entries made stale by an earlier merge are detected and dropped when popped.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols(piece.size());
  for (size_t i = 0; i < piece.size(); ++i)
    symbols[i] = {byte_ids_[static_cast<uint8_t>(piece[i])], static_cast<int32_t>(i) - 1,
                  i + 1 < piece.size() ? static_cast<int32_t>(i + 1) : -1};
  using Candidate = std::pair<int32_t, int32_t>;  // (rank, left position)
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto consider = [&](int32_t left) {
    if (left < 0 || symbols[static_cast<size_t>(left)].next < 0) return;
    const auto it =
        merge_of_pair_.find(pair_key(symbols[static_cast<size_t>(left)].id,
                                     symbols[static_cast<size_t>(symbols[static_cast<size_t>(left)].next)].id));
    if (it != merge_of_pair_.end()) heap.emplace(it->second.rank, left);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(piece.size()); ++i) consider(i);
  while (!heap.empty()) {
    const auto [rank, left] = heap.top();
    heap.pop();
    Symbol& l = symbols[static_cast<size_t>(left)];
    if (l.id < 0 || l.next < 0) continue;  // merged away, or no right neighbour any more
    Symbol& r = symbols[static_cast<size_t>(l.next)];
    const auto it = merge_of_pair_.find(pair_key(l.id, r.id));
    if (it == merge_of_pair_.end() || it->second.rank != rank) continue;  // pair changed
    l.id = it->second.result;
    r.id = -1;  // dead
    l.next = r.next;
    if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = left;
    consider(l.prev);
    consider(left);
  }
  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next)
    out.push_back(symbols[static_cast<size_t>(i)].id);
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_ids_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (settings_.ignore_merges) {
    if (const auto it = id_of_bytes_.find(std::string(piece)); it != id_of_bytes_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Long pieces (runs of spaces, base64 blobs) are rare and would only bloat the cache.
  constexpr size_t kMaxCachedPieceBytes = 64;
  constexpr size_t kMaxCacheEntries = size_t{1} << 20;
  const bool cacheable = piece.size() <= kMaxCachedPieceBytes;
  std::string key;
  if (cacheable) {
    key.assign(piece);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (const auto it = cache_.find(key); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_piece(piece, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::move(key), std::vector<int32_t>(out.begin() + static_cast<ptrdiff_t>(start), out.end()));
  }
}

void BpeTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  const std::string normalized = settings_.nfc ? nfc(text) : std::string();
  const std::string_view norm = settings_.nfc ? std::string_view(normalized) : text;
  std::vector<std::string_view> pieces;
  const auto on_text = [&](std::string_view plain) {
    pieces.clear();
    pretokenize(settings_.pattern, plain, pieces);
    for (const std::string_view piece : pieces) encode_piece(piece, ids);
  };
  if (normalized_matcher_.empty())
    on_text(norm);
  else
    normalized_matcher_.split(norm, on_text, [&](int32_t id) { ids.push_back(id); });
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  raw_matcher_.split(
      text, [&](std::string_view plain) { encode_plain(plain, ids); },
      [&](int32_t special_id) { ids.push_back(special_id); });
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (const int32_t id : ids) {
    LNX_CHECK(id >= 0 && id < vocab_size(), ValueError, "[bpe_tokenizer] token id {} is outside the vocabulary [0, {})",
              id, vocab_size());
    text += token_bytes_[static_cast<size_t>(id)];
  }
  return text;
}

}  // namespace lnx::data
