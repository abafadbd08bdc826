// The data of a training run, ready for the trainer: the tokenizer (text sources), and the
// training and validation batches as pure functions of their index (so a resumed run sees
// exactly the batches an uninterrupted one would).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "data/loader.h"
#include "data/tokenizer.h"
#include "train/train_config.h"

namespace lnx::train {

struct RunData {
  std::shared_ptr<data::Tokenizer> tokenizer;  // null for synthetic tasks
  std::function<data::Batch(int64_t index)> train_batch, val_batch;
  int64_t vocab_size = 0;
  int64_t train_tokens = 0, val_tokens = 0;  // text sources
  double unigram_entropy = 0;                // nats per token of the training stream (text sources)
  bool mqar = false;                         // report recall accuracy
  std::string description;                   // one line for the log
  std::string chat_template;                 // data.chat_template's text, saved with checkpoints ("" = none)
};

// Builds the corpus, tokenizer (trained, loaded from data.tokenizer, or — when resuming — the
// run's own tokenizer_path) and token files under run_dir/data. source sft: the JSON Lines
// examples of data.path (data/sft.h), with model_dir's chat template and eos ids (the model
// directory fine-tuned from; "" = none), packed into batches of batch_size · seq_len tokens.
RunData prepare_run_data(const TrainConfig& config, const std::string& run_dir, const std::string& model_dir = "",
                         const std::string& tokenizer_path = "");

}  // namespace lnx::train
