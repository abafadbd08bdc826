// The training loop. Each step: lr from the schedule; grad_accum micro-batches (batch k of a
// run is a pure function of the seed and k); a Sophia Hessian estimate when due; global-norm
// clipping; a NaN/inf check that stops with the last good checkpoint named; the update.
// Every eval_every steps a validation pass (loss, and recall accuracy on MQAR) and the best
// checkpoint; every save_every steps the "last" checkpoint — model, optimizer state, trainer
// state, tokenizer and config, swapped in atomically — from which a run resumes exactly
// (same losses as an uninterrupted run). Metrics go to out_dir/metrics.jsonl; progress to
// stdout (a bar on a terminal, lines otherwise).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "dist/communicator.h"
#include "models/lm_model.h"
#include "train/train_config.h"

namespace lnx::train {

struct TrainResult {
  int64_t steps = 0;          // steps done in total (including before a resume)
  int64_t resumed_from = -1;  // the step resumed at, or −1
  double last_loss = 0;       // mean training loss of the last step
  double val_loss = 0;        // of the last validation pass
  double best_val_loss = 0;
  double val_accuracy = -1;          // MQAR recall accuracy of the last pass (−1 for text)
  double unigram_entropy = 0;        // nats/token of the training text (0 for synthetic tasks)
  double seconds = 0;                // wall time of this process's steps
  int64_t tokens = 0;                // tokens trained on in this process's steps (by all ranks together)
  double communication_seconds = 0;  // data parallelism: time in exchanges the backward did not hide
  // What a caller needs to use the trained model (the CLI prints a generated sample with it):
  std::shared_ptr<models::LMModel> model;            // the final weights (those of out_dir/last)
  std::shared_ptr<const data::Tokenizer> tokenizer;  // text sources; null for synthetic tasks
  std::vector<int32_t> sample_prompt;                // train.sample_prompt encoded, or the first validation
                                                     // token when it encodes to nothing (text sources)
};

// What a step reports (the fields of its metrics.jsonl record).
struct StepMetrics {
  int64_t step = 0;
  double loss = 0;          // mean training loss of the step
  double lr_scale = 0;      // the schedule's factor on optimizer.lr
  double grad_norm = 0;     // global gradient norm before clipping
  double tokens_per_s = 0;  // since the run (or the resume) started
};

struct TrainHooks {
  // Called after each step; returning false stops the run after saving.
  std::function<bool(const StepMetrics&)> after_step;
};

// The run's ranks are dist::Communicator::world(): one process, or every process mpirun or
// srun started (data parallelism: each rank trains on its shard of every global batch, the
// gradients are summed over ranks, rank 0 alone prints, logs and writes out_dir; the losses are
// those of one process on the same global batch). In a run of several ranks an error on any
// rank prints "error: rank r of n: …" and ends every rank (MPI_Abort), since the others would
// otherwise wait for it.
TrainResult train(const TrainConfig& config, const TrainHooks& hooks = {});
TrainResult train(const TrainConfig& config, const TrainHooks& hooks, dist::Communicator& comm);

// Validation of a checkpoint directory: mean loss over `batches` validation batches of the
// given data config (and MQAR accuracy).
struct EvalResult {
  double loss = 0, perplexity = 0, accuracy = -1;
  int64_t tokens = 0;
};
EvalResult evaluate_checkpoint(const std::string& checkpoint_dir, const TrainConfig& config, int64_t batches);

}  // namespace lnx::train
