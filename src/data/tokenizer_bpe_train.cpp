// Byte-level BPE training. The corpus is cut at special tokens, split by the GPT-2
// pre-tokenizer and reduced to distinct pre-tokens with counts ("words"). Pair counts are kept
// incrementally: a merge only revisits the words that contain the merged pair, found through
// an index pair -> words, and a max-heap with lazy invalidation picks the next pair.
// Ties: equal counts go to the smaller (left id, right id). Ids: bytes are 0..255 (id = byte
// value), each merge that makes a new byte string appends its id, specials follow.
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "data/tokenizer_bpe_internal.h"
#include "data/tokenizer_pretokenize.h"
#include "tensor/error.h"

namespace lnx::data {
namespace {

using PairKey = uint64_t;
PairKey key_of(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t left_of(PairKey key) { return static_cast<int32_t>(key >> 32); }
int32_t right_of(PairKey key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> ids;
  int64_t count;
};

struct HeapEntry {
  int64_t count;
  PairKey pair;
  // priority_queue pops the largest: higher count first, then the smaller pair.
  bool operator<(const HeapEntry& other) const {
    if (count != other.count) return count < other.count;
    return pair > other.pair;
  }
};

std::vector<Word> count_words(std::string_view corpus, const detail::SpecialMatcher& matcher) {
  std::unordered_map<std::string_view, int64_t> counts;
  std::vector<std::string_view> pieces;
  matcher.split(
      corpus,
      [&](std::string_view plain) {
        pieces.clear();
        gpt2_pretokenize(plain, pieces);
        for (const std::string_view piece : pieces) ++counts[piece];
      },
      [](int32_t) {});
  // Sorted so that everything downstream is independent of hash-map iteration order.
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [piece, count] : sorted) {
    Word w{{}, count};
    for (const char b : piece) w.ids.push_back(static_cast<uint8_t>(b));
    words.push_back(std::move(w));
  }
  return words;
}

class PairCounter {
 public:
  explicit PairCounter(std::vector<Word> words) : words_(std::move(words)), seen_in_merge_(words_.size(), -1) {
    for (size_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (size_t i = 0; i + 1 < word.ids.size(); ++i) {
        const PairKey pair = key_of(word.ids[i], word.ids[i + 1]);
        counts_[pair] += word.count;
        where_[pair].push_back(static_cast<int32_t>(w));
      }
    }
    for (const auto& [pair, count] : counts_) heap_.push({count, pair});
  }

  // The most frequent pair still present, or nullopt when no word has two symbols left.
  std::optional<PairKey> best() {
    while (!heap_.empty()) {
      const HeapEntry top = heap_.top();
      const auto it = counts_.find(top.pair);
      const int64_t current = it == counts_.end() ? 0 : it->second;
      if (current == top.count && current > 0) return top.pair;
      heap_.pop();  // stale: counts only fall after an entry is pushed, so re-push the truth
      if (current > 0) heap_.push({current, top.pair});
    }
    return std::nullopt;
  }

  // Replaces every occurrence of pair (left to right, non-overlapping) by new_id.
  void merge(PairKey pair, int32_t new_id, int64_t merge_index) {
    const int32_t left = left_of(pair), right = right_of(pair);
    std::vector<int32_t> affected = std::move(where_[pair]);
    where_.erase(pair);
    std::vector<PairKey> new_pairs;
    std::vector<int32_t> merged;
    for (const int32_t w : affected) {
      if (seen_in_merge_[static_cast<size_t>(w)] == merge_index) continue;  // listed twice
      seen_in_merge_[static_cast<size_t>(w)] = merge_index;
      Word& word = words_[static_cast<size_t>(w)];
      const std::vector<int32_t>& ids = word.ids;
      const int64_t c = word.count;
      // Only the pairs touching a merge site change: (prev, left) becomes (prev, new) and
      // (right, next) becomes (new, next). prev is read from the output, so back-to-back
      // occurrences ("abab" -> XX) are accounted for correctly.
      const auto gained = [&](int32_t a, int32_t b) {
        const PairKey p = key_of(a, b);
        counts_[p] += c;
        where_[p].push_back(w);
        new_pairs.push_back(p);
      };
      merged.clear();
      for (size_t i = 0; i < ids.size();) {
        if (i + 1 < ids.size() && ids[i] == left && ids[i + 1] == right) {
          if (!merged.empty()) {
            counts_[key_of(merged.back(), left)] -= c;
            gained(merged.back(), new_id);
          }
          if (i + 2 < ids.size()) {
            counts_[key_of(right, ids[i + 2])] -= c;
            gained(new_id, ids[i + 2]);
          }
          merged.push_back(new_id);
          i += 2;
        } else {
          merged.push_back(ids[i]);
          i += 1;
        }
      }
      word.ids.swap(merged);
    }
    counts_.erase(pair);
    std::sort(new_pairs.begin(), new_pairs.end());
    new_pairs.erase(std::unique(new_pairs.begin(), new_pairs.end()), new_pairs.end());
    for (const PairKey p : new_pairs) heap_.push({counts_[p], p});
  }

 private:
  std::vector<Word> words_;
  std::vector<int64_t> seen_in_merge_;  // last merge that visited each word
  std::unordered_map<PairKey, int64_t> counts_;
  std::unordered_map<PairKey, std::vector<int32_t>> where_;
  std::priority_queue<HeapEntry> heap_;
};

}  // namespace

std::unique_ptr<Tokenizer> train_bpe_tokenizer(std::string_view corpus, int64_t vocab_size,
                                               const std::vector<std::string>& specials) {
  detail::check_specials(specials, "bpe_train");
  const int64_t n_specials = static_cast<int64_t>(specials.size());
  LNX_CHECK(vocab_size >= 256 + n_specials && vocab_size <= (int64_t{1} << 24), ValueError,
            "[bpe_train] vocab_size must be in [256 + {} specials, 2^24], got {}", n_specials, vocab_size);
  std::vector<std::pair<std::string, int32_t>> unnumbered;
  for (const std::string& s : specials) unnumbered.emplace_back(s, 0);
  const detail::SpecialMatcher matcher(unnumbered);

  std::vector<std::string> token_bytes;
  std::array<int32_t, 256> byte_ids{};
  for (int b = 0; b < 256; ++b) {
    token_bytes.emplace_back(1, static_cast<char>(b));
    byte_ids[static_cast<size_t>(b)] = b;
  }
  std::unordered_map<std::string, int32_t> id_of_bytes;
  for (int b = 0; b < 256; ++b) id_of_bytes.emplace(token_bytes[static_cast<size_t>(b)], b);
  PairCounter counter(count_words(corpus, matcher));
  std::vector<BpeMerge> merges;
  const size_t target_tokens = static_cast<size_t>(vocab_size - n_specials);
  while (token_bytes.size() < target_tokens) {
    const std::optional<PairKey> best = counter.best();
    if (!best) break;  // every pre-token is a single token already
    const BpeMerge m{left_of(*best), right_of(*best)};
    std::string merged = token_bytes[static_cast<size_t>(m.left)] + token_bytes[static_cast<size_t>(m.right)];
    // Rarely two merge paths spell the same bytes; the merge then reuses the existing token,
    // so every byte string has one id (as tokenizer.json's vocab requires).
    const auto [it, is_new] = id_of_bytes.emplace(std::move(merged), static_cast<int32_t>(token_bytes.size()));
    if (is_new) token_bytes.push_back(it->first);
    counter.merge(*best, it->second, static_cast<int64_t>(merges.size()));
    merges.push_back(m);
  }
  std::vector<std::pair<std::string, int32_t>> numbered;
  for (const std::string& s : specials) {
    numbered.emplace_back(s, static_cast<int32_t>(token_bytes.size()));
    token_bytes.push_back(s);
  }
  return std::make_unique<BpeTokenizer>(std::move(token_bytes), byte_ids, merges, std::move(numbered));
}

}  // namespace lnx::data
