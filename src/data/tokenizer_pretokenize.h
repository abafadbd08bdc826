// The GPT-2 pre-tokenizer: splits text into the pieces BPE merges never cross, following
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with the leftmost-first alternation of a backtracking regex, written as a small state
// machine over characters (std::regex has no Unicode categories). Invalid UTF-8 bytes count
// as one "Other" character each, so any byte string splits into pieces that concatenate back
// to it exactly. Units: byte offsets.
#pragma once

#include <string_view>
#include <vector>

namespace lnx::data {

// Appends the pieces of text to out (views into text, in order, together covering it).
void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& out);

}  // namespace lnx::data
