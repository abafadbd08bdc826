// The configuration of a training run, one YAML file with five sections (each optional;
// unknown keys are errors naming the valid ones and the line):
//
//   model:     {preset: hybrid-tiny, d_model: 96}        # a ModelConfig (models/config.h)
//   data:      {source: builtin, tokenizer: char}         # DataConfig below
//   optimizer: {name: adamw, lr: 3.0e-3}                  # OptimizerConfig (train/optim.h)
//   schedule:  {kind: cosine, warmup_steps: 100}          # ScheduleConfig (train/schedule.h)
//   train:     {steps: 2000, batch_size: 16, seq_len: 256, out_dir: runs/hybrid-tiny}
//
// Overrides `section.key=value` (e.g. `optimizer.lr=1e-3`, `model.n_layer=6`) are applied to
// the YAML before it is read, so they are checked exactly like the file.
#pragma once

#include <string>
#include <vector>

#include "models/config.h"
#include "train/optim.h"
#include "train/schedule.h"

namespace YAML {
class Node;
}

namespace lnx::train {

// The model trained when the config has no model section.
inline constexpr const char* kDefaultPreset = "hybrid-tiny";

struct DataConfig {
  std::string source = "builtin";   // builtin (generated text) | text (a UTF-8 file) | sft | mqar (synthetic recall)
  std::string path;                 // source: text
  std::string tokenizer = "char";   // char | bpe | a tokenizer.json path
  std::string chat_template;        // source: sft — a Jinja file used instead of the model's template
  int64_t bpe_vocab_size = 1024;    // tokenizer: bpe
  int64_t builtin_bytes = 2000000;  // source: builtin
  double val_fraction = 0.05;       // the last part of the token stream is validation data
  int64_t mqar_vocab_size = 256, mqar_num_kv_pairs = 4;  // source: mqar (sequence length = train.seq_len)
  double mqar_power_a = 0.01;

  template <class V> void visit(V&& v) {
    v("source", source, "builtin | text | sft (JSON Lines of prompt/completion or messages) | mqar");
    v("path", path, "text file (source: text) or JSON Lines file (source: sft)");
    v("tokenizer", tokenizer, "char | bpe | path to a tokenizer.json");
    v("chat_template", chat_template,
      "source sft: a Jinja chat template file for messages examples (instead of the model's; kept in checkpoints)");
    v("bpe_vocab_size", bpe_vocab_size, "vocabulary of a BPE tokenizer trained on the data");
    v("builtin_bytes", builtin_bytes, "size of the generated corpus (source: builtin)");
    v("val_fraction", val_fraction, "share of the token stream held out for validation");
    v("mqar_vocab_size", mqar_vocab_size, "MQAR vocabulary");
    v("mqar_num_kv_pairs", mqar_num_kv_pairs, "MQAR key-value pairs per sequence");
    v("mqar_power_a", mqar_power_a, "MQAR power-law exponent of the query gaps");
  }
};

struct LoopConfig {
  int64_t steps = 1000;
  int64_t batch_size = 16;
  int64_t seq_len = 256;
  int64_t grad_accum = 1;
  double clip = 1.0;         // global gradient-norm clip (0 = off)
  int64_t eval_every = 100;  // steps between validation passes (0 = only at the end)
  int64_t eval_batches = 8;
  int64_t save_every = 200;  // steps between "last" checkpoints (0 = only at the end)
  int64_t log_every = 10;
  std::string out_dir = "runs/default";
  int64_t seed = 0;
  bool remat = false;             // recompute each block's activations in backward
  std::string precision = "f32";  // f32 | bf16: the inner products of every matrix product (tensor/cpu/blas.h)
  bool resume = true;             // continue from out_dir/last when it exists
  int64_t sample_tokens = 200;    // tokens the CLI generates after training (0 = none)
  std::string sample_prompt;
  std::string init_from;  // fine-tuning: a checkpoint or Hugging Face directory to start from
  // Data parallelism (under mpirun / srun; ignored by a single process):
  int64_t zero_stage = 0;           // 1: shard the optimizer state across ranks (ZeRO-1)
  double bucket_mb = 4;             // MiB of gradients per all-reduce, started during backward
  double collective_timeout = 600;  // seconds a rank waits for the others before it gives up

  template <class V> void visit(V&& v) {
    v("steps", steps, "optimizer steps");
    v("batch_size", batch_size, "sequences per micro-batch");
    v("seq_len", seq_len, "tokens per sequence");
    v("grad_accum", grad_accum, "micro-batches per step");
    v("clip", clip, "global gradient-norm clip (0 = off)");
    v("eval_every", eval_every, "steps between validation passes (0 = at the end)");
    v("eval_batches", eval_batches, "validation batches per pass");
    v("save_every", save_every, "steps between checkpoints (0 = at the end)");
    v("log_every", log_every, "steps between metric lines");
    v("out_dir", out_dir, "run directory: checkpoints last/ and best/, metrics.jsonl");
    v("seed", seed, "seed of the model init and the data order");
    v("remat", remat, "recompute block activations in backward (less memory)");
    v("precision", precision,
      "matrix products in f32, or bf16 (operands rounded to bf16, f32 sums; parameters, optimizer and the rest stay "
      "f32)");
    v("resume", resume, "continue from out_dir/last when it exists");
    v("sample_tokens", sample_tokens, "tokens generated after training (0 = none)");
    v("sample_prompt", sample_prompt, "prompt of that sample");
    v("init_from", init_from,
      "checkpoint or Hugging Face model directory to fine-tune: its config replaces model, its weights start the "
      "run (fresh optimizer and schedule), its tokenizer.json tokenizes text data");
    v("zero_stage", zero_stage,
      "data parallelism: 0 = every rank holds the whole optimizer state, 1 = each rank holds the state of its share "
      "of the parameters (ZeRO-1)");
    v("bucket_mb", bucket_mb, "data parallelism: MiB of gradients per all-reduce, started during the backward pass");
    v("collective_timeout", collective_timeout,
      "data parallelism: seconds a rank waits in a collective before it stops the run (a rank died or hangs)");
  }
};

struct TrainConfig {
  models::ModelConfig model;
  DataConfig data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  LoopConfig train;
  // model.vocab_size was written in the config (not taken from a preset): the trainer then keeps
  // it when it covers the tokenizer, and refuses it when it does not, instead of replacing it.
  bool model_vocab_size_set = false;
};

TrainConfig train_config_from_yaml(const YAML::Node& root, const std::string& where);
YAML::Node train_config_to_yaml(const TrainConfig& config);
// Parses `a.b=value` and sets root[a][b] = value (value read as YAML: numbers, booleans,
// strings, [lists]). ValueError for a malformed override.
void apply_override(YAML::Node& root, const std::string& assignment);
// File (or an empty config when path is empty) + overrides.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace lnx::train
