// Pre-tokenizers: split text into the pieces BPE merges never cross. Three split patterns of
// released byte-level BPE tokenizers are implemented, each as a small state machine over
// characters that follows the leftmost-first alternation of a backtracking regex (std::regex
// has no Unicode categories, and no general regex engine is used):
//
//   gpt2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//          (GPT-2, GPT-NeoX/Pythia/Mamba: Hugging Face's ByteLevel pre-tokenizer with use_regex)
//   llama3 (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//          (Llama-3: a Split pre-tokenizer before a ByteLevel one without regex)
//   qwen2  the same with \p{N} (one digit per piece) instead of \p{N}{1,3} (Qwen2, Qwen2.5, Qwen3)
//
// \s is Unicode White_Space, \p{L} and \p{N} the general categories (data/unicode.h); (?i:...)
// also matches the upper-case letters and U+017F (long s, whose case folding is 's'), as
// Oniguruma does for Hugging Face. Invalid UTF-8 bytes count as one "Other" character each, so
// any byte string splits into pieces that concatenate back to it exactly. Units: byte offsets.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lnx::data {

enum class SplitPattern { Gpt2, Llama3, Qwen2 };

// The regex source of each pattern, exactly as tokenizer.json holds it (after JSON unescaping).
std::string_view split_pattern_regex(SplitPattern pattern);
// The pattern whose regex source is regex, or nullopt for any other regex.
std::optional<SplitPattern> recognise_split_pattern(std::string_view regex);
// "gpt2", "llama3", "qwen2".
const char* split_pattern_name(SplitPattern pattern);

// Appends the pieces of text to out (views into text, in order, together covering it).
void pretokenize(SplitPattern pattern, std::string_view text, std::vector<std::string_view>& out);
inline void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& out) {
  pretokenize(SplitPattern::Gpt2, text, out);
}

}  // namespace lnx::data
