// libFuzzer's entry point for one target, chosen at build time (LNX_FUZZ_TARGET, e.g.
// fuzz_safetensors): one executable per target, see fuzz/CMakeLists.txt.
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)lnx::fuzz::LNX_FUZZ_TARGET(data, size);
  return 0;
}
