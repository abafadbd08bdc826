// Supervised fine-tuning data: JSON Lines, one example per line, either
//   {"prompt": "...", "completion": "..."}      the loss counts the completion's tokens, or
//   {"messages": [{"role": ..., "content": ...}, ...]}
//                                               rendered by the model's chat template; the loss
//                                               counts the assistant messages' tokens.
// Examples are packed into rows with cu_seqlens (no state or attention crosses an example), so a
// packed batch trains exactly as its examples one by one.
//
// Dimension letters: P packed tokens of a batch, N examples in it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/loader.h"
#include "data/tokenizer.h"

namespace lnx::data {

struct SftExample {
  std::vector<int32_t> ids;
  std::vector<uint8_t> scored;  // [ids.size()]: 1 where the token is a target of the loss
};

// Reads and tokenizes path. prompt/completion examples get eos_id appended to the completion
// (scored) when eos_id >= 0. messages need chat (a chat template): the conversation up to each
// assistant message is rendered with add_generation_prompt, the message itself is what the
// rendering through it adds; the two are tokenized separately. Errors (IOError/ValueError) name
// the file and line: malformed JSON, a line that is neither form, a role or content that is not
// a string, messages without a template, an example without a scored token.
std::vector<SftExample> load_sft_examples(const std::string& path, const Tokenizer& tokenizer, const ChatFormat* chat,
                                          int32_t eos_id);

// Batches of packed examples. Batch k: the examples of an epoch's seeded shuffle, packed in
// order into one row of at most batch_tokens (an example longer than max_len keeps its first
// max_len tokens): ids [1, P], targets [1, P] (the next token where it is scored, −100 at
// unscored positions and at each example's last token), cu_seqlens [N + 1]. Batch k depends
// only on (seed, k): runs resume exactly.
class SftSource {
 public:
  SftSource(std::vector<SftExample> examples, int64_t batch_tokens, int64_t max_len, uint64_t seed);
  Batch batch(int64_t index) const;
  int64_t batches_per_epoch() const { return static_cast<int64_t>(bins_of_epoch(0).size()); }
  int64_t num_examples() const { return static_cast<int64_t>(examples_.size()); }
  int64_t scored_tokens() const;

 private:
  std::vector<std::vector<int64_t>> bins_of_epoch(int64_t epoch) const;  // example indices per batch
  std::vector<SftExample> examples_;
  int64_t batch_tokens_, max_len_;
  uint64_t seed_;
};

}  // namespace lnx::data
