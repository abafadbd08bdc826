// Model checkpoints: a directory holding model.safetensors (every parameter under its dotted
// name) and config.yaml (the ModelConfig). Saving is atomic: the new directory is written
// under a temporary name, flushed, and swapped with the old one in one rename, so a kill at
// any moment leaves either the old checkpoint or the new one under the name, never a mix.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "models/lm_model.h"

namespace lnx::models {

// A model with a NaN or inf weight is refused (ValueError), so a checkpoint never holds one.
// extra_files(tmp_dir) may write more files into the checkpoint before it is swapped in (a
// trainer's optimizer state, tokenizer, …), so they are replaced atomically together.
void save_model(const LMModel& model, const std::string& dir, const std::map<std::string, std::string>& metadata = {},
                const std::function<void(const std::string& tmp_dir)>& extra_files = {});
// A checkpoint directory, or a Hugging Face model directory (config.json and safetensors,
// models/hf/hf.h), which loads through its architecture's mapping.
std::unique_ptr<LMModel> load_model(const std::string& dir);
// The ModelConfig of either kind of directory.
ModelConfig load_directory_config(const std::string& dir);

// Replaces module's parameters with the tensors of a safetensors file. Every problem
// (a parameter missing from the file, a tensor the module does not have, a shape or dtype
// mismatch) is collected and reported in one ValueError naming the file.
// Refuses NaN and inf weights too (a diverged model): ValueError naming the tensor.
void load_weights(modules::Module& module, const std::string& path);

// ValueError "[checkpoint] what: parameter 'name' [shape] has N non-finite values" for the first
// floating tensor of params holding a NaN or inf. save_model and every loader call it.
void check_finite_parameters(const TensorDict& params, const std::string& what);

}  // namespace lnx::models
