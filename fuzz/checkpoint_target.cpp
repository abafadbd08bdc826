// Fuzz target: checkpoint directories, our own (config.yaml) and Hugging Face ones
// (config.json), with their model.safetensors.
#include <filesystem>

#include "fuzz_targets.h"
#include "fuzz_util_internal.h"
#include "models/checkpoint.h"

namespace lnx::fuzz {

bool fuzz_checkpoint(const uint8_t* data, size_t size) {
  const std::string_view input = as_text(data, size), separator = "\n#--weights--\n";
  const size_t cut = input.find(separator);
  const std::string_view config = input.substr(0, cut);
  const std::string_view weights = cut == std::string_view::npos ? "" : input.substr(cut + separator.size());
  const std::string dir = scratch_dir() + "/checkpoint";
  std::filesystem::remove_all(dir);
  const bool hf = !config.empty() && config.front() == '{';
  write_scratch(hf ? "checkpoint/config.json" : "checkpoint/config.yaml", config);
  write_scratch("checkpoint/model.safetensors", weights);
  refusals_allowed([&] { (void)models::load_directory_config(dir); });
  return refusals_allowed([&] {
    const auto model = models::load_model(dir);
    // A model that loads runs: one forward of three tokens.
    (void)model->forward(from_vector<int64_t>({0, 1, 0}, {1, 3}));
  });
}

}  // namespace lnx::fuzz
