// Tokenizers: text (UTF-8 bytes) <-> token ids (int32). Two kinds:
//
// - "char": one id per Unicode code point seen in the training corpus (sorted by code point),
//   then the special tokens; "<unk>" is always one of them. encode never drops input: a
//   character outside the vocabulary, and each byte of invalid UTF-8, becomes the <unk> id,
//   so for such text decode(encode(s)) != s (decode writes "<unk>" there). For text whose
//   characters are all in the vocabulary, decode(encode(s)) == s.
// - "bpe": byte-level BPE as GPT-2 defines it (bytes mapped to printable characters, merges
//   applied by rank), saved and loaded as a Hugging Face tokenizer.json. Training uses GPT-2's
//   split pattern; loading also takes the kinds released models use, giving the ids Hugging
//   Face's `tokenizers` gives: GPT-2/GPT-NeoX (ByteLevel pre-tokenizer), Llama-3 and Qwen2
//   (a Split of their regex, then ByteLevel), an NFC normalizer, added tokens with their
//   single_word/lstrip/rstrip/normalized options, and a TemplateProcessing post-processor
//   (prefix_ids/suffix_ids). decode(encode(s)) == s byte for byte for any input, invalid
//   UTF-8 included, except that with an NFC normalizer it is NFC(s) (lstrip/rstrip tokens
//   also drop the whitespace they take).
//
// Both recognise their special (added) tokens, e.g. "<|endoftext|>", anywhere in the text
// given to encode (leftmost, longest match first) and never split them; decode writes an
// added token's text back. Files are JSON, written atomically; loaders treat them as untrusted and
// raise IOError naming the file and the problem.
// encode and decode are const and safe to call from several threads at once (the BPE
// pre-token cache is guarded by a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lnx::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Ids outside [0, vocab_size) raise ValueError.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::string kind() const = 0;  // "char" or "bpe"
  virtual void save(const std::string& path) const = 0;

  // Id of a special token by its text, e.g. special_token("<|endoftext|>"). Every added token
  // of a Hugging Face tokenizer.json counts, "special" or not.
  std::optional<int32_t> special_token(std::string_view name) const;
  // All special tokens as (text, id), in id order.
  const std::vector<std::pair<std::string, int32_t>>& special_tokens() const { return specials_; }

  // Ids the tokenizer's post-processor puts before / after an encoded text when special tokens
  // are added (Hugging Face's add_special_tokens=True), e.g. Llama-3's <|begin_of_text|> in
  // front; empty for most tokenizers. encode() never adds them.
  const std::vector<int32_t>& prefix_ids() const { return prefix_ids_; }
  const std::vector<int32_t>& suffix_ids() const { return suffix_ids_; }
  // prefix_ids() + encode(text) + suffix_ids().
  std::vector<int32_t> encode_with_special_tokens(std::string_view text) const;

 protected:
  std::vector<std::pair<std::string, int32_t>> specials_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;
};

// Loads either kind; the kind is detected from the file ({"type": "char"} or a Hugging Face
// tokenizer.json with model.type "BPE"). Malformed or unsupported files raise IOError naming
// the file and what is not supported (another split regex, a WordPiece model, ...).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// Char tokenizer over the distinct code points of corpus (invalid UTF-8 bytes are skipped).
// "<unk>" is added first among the specials unless specials already names it.
std::unique_ptr<Tokenizer> train_char_tokenizer(std::string_view corpus, const std::vector<std::string>& specials = {});

// Byte-level BPE with vocab_size = 256 byte tokens + merges + specials. Occurrences of the
// specials in corpus are cut out before training. Training stops early when no adjacent pair
// is left to merge. Ties between equally frequent pairs go to the smaller (left id, right id),
// which makes training deterministic.
std::unique_ptr<Tokenizer> train_bpe_tokenizer(std::string_view corpus, int64_t vocab_size,
                                               const std::vector<std::string>& specials = {});

// Incremental decoding for generation: push ids as they are sampled and get back only whole
// UTF-8 characters; bytes that could still complete a character wait for the next id. The
// concatenation of every push() and the final flush() equals tokenizer.decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is pending, complete or not

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace lnx::data
