// Hugging Face model directories in and out: config.json and model.safetensors (or sharded
// model-0000x-of-0000y.safetensors with model.safetensors.index.json) of the architectures of
// transformers that an LMModel expresses. Each architecture (model_type) is one table entry in
// this folder (llama.cpp, mamba.cpp, bamba.cpp, qwen3_next.cpp): how its config.json maps to a ModelConfig and
// back, and how its tensor names map to our parameter names.
//
//   llama, qwen2, qwen3   attention blocks (GQA, RoPE, biases of Qwen2, QK-norm of Qwen3) + SwiGLU
//   mamba                 Mamba-1 blocks, no MLP
//   mamba2                Mamba-2 blocks (grouped B/C, gated RMSNorm), no MLP
//   bamba                 Mamba-2 and attention blocks (RoPE on half of each head), each + SwiGLU
//   qwen3_next            Gated DeltaNet (grouped value heads) and gated attention blocks, each +
//                         a sparse MoE with a gated shared expert (or a dense SwiGLU); 1 + w norms
//
// Reading is strict: an unknown model_type, a config key this code does not know (or knows
// and does not support, such as rope scaling), a missing, extra or misshapen tensor, is a
// ValueError naming the file and the key or tensor. Weights stored as BF16, F16 or F32 load as
// f32.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/lm_model.h"

namespace lnx::models::hf {

// The model_types this build reads and writes.
std::vector<std::string> model_types();

// dir holds a config.json with a model_type (a Hugging Face model directory).
bool is_hf_directory(const std::string& dir);

// The ModelConfig of dir's config.json (ValueError naming the file and key when it does not fit).
ModelConfig load_config(const std::string& dir);

// The model of dir: its config and its weights (every problem with the weights is listed in
// one ValueError naming the directory).
std::unique_ptr<LMModel> load_model(const std::string& dir);

// The model_type that expresses config ("" when none does); `why` gets the reason of each
// architecture that does not.
std::string export_type(const ModelConfig& config, std::string* why = nullptr);

// Writes model to dir as a Hugging Face directory of the given model_type ("" = export_type):
// config.json and model.safetensors (F32), atomically (a temporary directory renamed into
// place; an existing dir is replaced). ValueError when the architecture cannot express the
// model, naming what does not fit. extra_files(tmp_dir) may add files (tokenizer.json, …)
// before the directory is swapped in.
void save_model(const LMModel& model, const std::string& dir, const std::string& model_type = "",
                const std::function<void(const std::string& tmp_dir)>& extra_files = {});

}  // namespace lnx::models::hf
