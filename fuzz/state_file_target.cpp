// Fuzz target: generation state files of a fixed tiny model, loaded as they are and as a forger
// would write them (the checksum recomputed over the mutated tensors, so the loader's own
// checks are what stands between the file and the session).
#include <optional>

#include "fuzz_targets.h"
#include "fuzz_util_internal.h"
#include "generate/session.h"
#include "io/safetensors.h"
#include "tensor/ops.h"

namespace lnx::fuzz {

bool fuzz_state_file(const uint8_t* data, size_t size) {
  const models::LMModel& model = state_file_model();
  auto load_and_continue = [&](const std::string& path) {
    return refusals_allowed([&] {
      generate::Session s = generate::Session::load(model, path);
      // A loaded state is a usable one: it samples, steps and saves again.
      generate::SamplingOptions o;
      o.max_new_tokens = 2;
      o.temperature = 0.8;
      (void)s.generate_batch(o);
      s.save(scratch_dir() + "/again.state");
    });
  };
  const std::string path = write_scratch("fuzz.state", as_text(data, size));
  const bool loaded = load_and_continue(path);
  std::optional<SafetensorsFile> f;
  refusals_allowed([&] { f = parse_safetensors(data, size); });
  if (!f) return loaded;
  TensorDict tensors;
  for (const auto& [name, t] : f->tensors) tensors.insert(name, t);
  f->metadata["checksum"] = generate::state_file_checksum(tensors);
  refusals_allowed([&] { save_safetensors(path, tensors, f->metadata); });
  load_and_continue(path);
  return loaded;
}

}  // namespace lnx::fuzz
