// A built-in training text: generated English-like stories about a small fixed world, so a
// model can be trained and judged without downloading anything.
//
// The world is the same for every seed (who lives where, works as what, keeps which animal,
// what each animal says, what colour each fruit is); the seed only chooses which stories are
// told and with which details. The text has learnable structure at several levels:
//   - fixed facts repeated across stories ("Anna lives in Millbrook.");
//   - arithmetic facts that are always correct, in words and in digits ("seven plus two is
//     nine.", "7 + 2 = 9"), and counting stories whose totals add up;
//   - ordered sequences (days, months, counting);
//   - in-context recall: a story puts an object somewhere and later asks where it is, and
//     the answer names the same place.
// Characters: ASCII letters, digits, space, newline and . , : ? ! ' " - + =. One story per
// line; a blank line after every story.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lnx::data {

// Deterministic for a seed; stops at the first story boundary at or after approx_bytes bytes
// (so the result is at most a few hundred bytes longer). approx_bytes must be >= 0.
std::string builtin_corpus(int64_t approx_bytes, uint64_t seed);

// English words for 0 ..= 100 ("zero", "seven", "twenty-one", "one hundred"); ValueError
// outside that range.
std::string number_words(int64_t n);

// Shannon entropy of the ids' unigram frequencies, in BITS per token:
// -sum_v p_v log2 p_v with p_v = count_v / ids.size(). A model that knows only unigram
// statistics reaches a loss of this value times ln 2 nats per token; training loss well below
// it means the model learned context. 0 for an empty sequence. ValueError for vocab < 1 or an
// id outside [0, vocab).
double unigram_entropy_bits(const std::vector<int32_t>& ids, int64_t vocab);

}  // namespace lnx::data
