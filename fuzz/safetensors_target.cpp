// Fuzz target: safetensors images, in memory and as a memory-mapped file.
#include <cstdlib>

#include "fuzz_targets.h"
#include "fuzz_util_internal.h"
#include "io/safetensors.h"
#include "tensor/ops.h"

namespace lnx::fuzz {

bool fuzz_safetensors(const uint8_t* data, size_t size) {
  const bool parsed = refusals_allowed([&] {
    const SafetensorsFile f = parse_safetensors(data, size);
    // Touch every tensor's bytes: a view past the buffer would show here under ASan.
    for (const auto& [name, t] : f.tensors) (void)contiguous(t).nbytes(), (void)to_dtype(t, DType::f64);
  });
  const std::string path = write_scratch("fuzz.safetensors", as_text(data, size));
  const bool loaded = refusals_allowed([&] {
    const SafetensorsFile f = load_safetensors(path);
    for (const auto& [name, t] : f.tensors) (void)to_dtype(t, DType::f64);
  });
  if (parsed != loaded) std::abort();  // the two readers must agree on every image
  return loaded;
}

}  // namespace lnx::fuzz
