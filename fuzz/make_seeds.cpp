// Writes the seed inputs that are made by the library itself into fuzz/corpus/<target>/:
// state files of the fuzzed model and small checkpoints (ours and Hugging Face). Run after a
// change of either format: `build/fuzz/lnx_fuzz_make_seeds fuzz/corpus`.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "fuzz_targets.h"
#include "generate/session.h"
#include "models/checkpoint.h"
#include "models/hf/hf.h"

namespace {

namespace fs = std::filesystem;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lnx;
  if (argc != 2) {
    std::cerr << "usage: lnx_fuzz_make_seeds CORPUS_DIR\n";
    return 1;
  }
  const std::string out = argv[1], tmp = fs::temp_directory_path() / "lnx-fuzz-seeds";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  // State files: one sequence, and three of different lengths (sampled, so generators moved).
  const models::LMModel& model = fuzz::state_file_model();
  generate::Session one(model);
  one.prefill({1, 2, 3});
  one.save(out + "/state_file/one_sequence.safetensors");
  generate::Session three(model, 3);
  three.prefill_batch({{1}, {2, 3, 4, 5}, {6, 7}});
  generate::SamplingOptions o;
  o.max_new_tokens = 2;
  o.temperature = 1.0;
  three.generate_batch(o);
  three.save(out + "/state_file/three_sequences.safetensors", "0123456789abcdef");
  // Checkpoints: config, separator, weights.
  for (const auto& [mixers, hf_type] : std::vector<std::pair<std::string, std::string>>{
           {"gated_deltanet, mamba2, attention", ""}, {"attention", "llama"}, {"mamba2", "mamba2"}}) {
    const models::ModelConfig c = fuzz::small_model_config(mixers);
    models::LMModel m(c, 3);
    const std::string name = hf_type.empty() ? "hybrid" : hf_type + "-hf";
    const std::string dir = tmp + "/" + name;
    if (hf_type.empty())
      models::save_model(m, dir);
    else
      models::hf::save_model(m, dir, hf_type);
    const std::string config = read(dir + (hf_type.empty() ? "/config.yaml" : "/config.json"));
    write(out + "/checkpoint/" + name, config + "\n#--weights--\n" + read(dir + "/model.safetensors"));
  }
  fs::remove_all(tmp);
  return 0;
}
